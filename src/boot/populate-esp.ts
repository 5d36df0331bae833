/**
 * A new ESP's contents, the same for `install` and `build-disk` (mounted or not):
 *
 *   1. systemd-boot at the fallback path and its own (signed for Secure Boot with a UKI)
 *   2. the image's Secure Boot keys under loader/keys/
 *   3. loader/loader.conf
 *   4. the deployment's kernel, initrd and entry, or its UKI (deployment-boot.ts)
 *   5. on a hybrid disk, GRUB's menu from the entries (grub-boot.ts)
 *
 * Updates change an ESP that has all of this through the same `Esp` (esp.ts).
 */
import { withContext } from '../core/errors.js';
import type { SigningKey } from '../uki/uki.js';
import { installDeploymentBoot, type AnyDeploymentBoot } from './deployment-boot.js';
import { installSecureBootKeys, installSystemdBoot, writeLoaderConf, type Esp } from './esp.js';
import { writeGrubMenu } from './grub-boot.js';

export interface EspContents {
  /** The deployment whose systemd-boot and keys are installed (else the host's systemd-boot). */
  deploymentDir: string;
  boot: AnyDeploymentBoot;
  /** Signs systemd-boot, for a UKI under Secure Boot. */
  signing?: SigningKey;
  /** loader.conf's menu timeout (GRUB waits as long); default: systemd-boot's. */
  timeoutSeconds?: number;
  /** A hybrid disk: GRUB's menu too. */
  grubMenu: boolean;
}

export async function populateEsp(esp: Esp, contents: EspContents): Promise<void> {
  await withContext(`Writing the ESP (${esp.where})`, async () => {
    await installSystemdBoot(esp, contents.deploymentDir, contents.signing);
    await installSecureBootKeys(esp, contents.deploymentDir);
    await writeLoaderConf(esp, contents.timeoutSeconds !== undefined ? { timeoutSeconds: contents.timeoutSeconds } : {});
    await installDeploymentBoot(esp, contents.boot);
    if (contents.grubMenu) await writeGrubMenu(esp);
  });
}
