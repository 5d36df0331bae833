/**
 * From a reference to the ImageSource that reads it. The puller and `image inspect` only
 * talk to ImageSource; this switch is the one place that knows the transports.
 */
import type { ImageReference, ImageSource } from './types.js';

export interface OpenSourceOptions {
  signal?: AbortSignal;
}

export async function openImageSource(reference: ImageReference, options: OpenSourceOptions = {}): Promise<ImageSource> {
  switch (reference.transport) {
    case 'registry': {
      const { openRegistrySource } = await import('./registry.js');
      return openRegistrySource(reference);
    }
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

