/**
 * From a reference to the ImageSource that reads it. The puller and `image inspect` only
 * talk to ImageSource; this switch is the one place that knows the transports.
 */
import { BugError } from '../core/errors.js';
import type { ImageReference, ImageSource } from './types.js';

export interface OpenSourceOptions {
  signal?: AbortSignal;
}

export async function openImageSource(reference: ImageReference, options: OpenSourceOptions = {}): Promise<ImageSource> {
  switch (reference.transport) {
    case 'registry':
      return openRegistry(reference, options);
    case 'oci': {
      const { openOciLayoutSource } = await import('./layout.js');
      return openOciLayoutSource(reference);
    }
    case 'oci-archive': {
      const { openOciArchiveSource } = await import('./layout.js');
      return openOciArchiveSource(reference);
    }
    case 'docker-archive': {
      const { openDockerArchiveSource } = await import('./docker-archive.js');
      return openDockerArchiveSource(reference);
    }
    case 'containers-storage': {
      const { openContainersStorageSource } = await import('./containers-storage.js');
      return openContainersStorageSource(reference, options.signal);
    }
  }
}

type OpenRegistrySource = (reference: ImageReference, options: OpenSourceOptions) => Promise<ImageSource>;

/**
 * registry.ts is built alongside this file; it is loaded by a computed name so this module
 * compiles whether or not it exists yet.
 */
async function openRegistry(reference: ImageReference, options: OpenSourceOptions): Promise<ImageSource> {
  const specifier = './registry.js';
  const registry = (await import(specifier)) as { openRegistrySource?: OpenRegistrySource };
  if (typeof registry.openRegistrySource !== 'function') throw new BugError('src/oci/registry.ts does not export openRegistrySource');
  return registry.openRegistrySource(reference, options);
}
