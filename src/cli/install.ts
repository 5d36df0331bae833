/**
 * `bootc install …`: to-disk, to-filesystem and print-configuration. Thin: parse the flags,
 * call src/install, print the outcome.
 */
import { resolve } from 'node:path';
import { cancellation } from '../core/cancel.js';
import { loadInstallConfig, readImageInstallConfigFiles, readTreeInstallConfigFiles } from '../install/config-files.js';
import { renderPrintConfiguration } from '../install/config.js';
import { pullImage } from '../oci/pull.js';
import { parseReference } from '../oci/reference.js';

/** Where pulled blobs are kept between runs, as `bootc image build-disk` keeps them. */
export const DEFAULT_STORE_DIR = '/var/cache/bootc/store';

export interface PrintConfigurationArgs {
  all: boolean;
  sourceImgref?: string;
  store?: string;
}

/**
 * Without --source-imgref the running system is the image (upstream runs this inside the
 * container), so its own /usr/lib/bootc/install is read.
 */
export async function runPrintConfiguration(args: PrintConfigurationArgs, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  let imageFiles;
  if (args.sourceImgref === undefined) {
    imageFiles = await readTreeInstallConfigFiles('/');
  } else {
    const pulled = await pullImage(parseReference(args.sourceImgref), {
      cacheDir: resolve(args.store ?? DEFAULT_STORE_DIR),
      signal: cancellation.signal,
    });
    imageFiles = await readImageInstallConfigFiles(pulled);
  }
  const config = await loadInstallConfig(imageFiles);
  out.write(renderPrintConfiguration(config, args.all));
}
