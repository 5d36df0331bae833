/**
 * Unified Kernel Images: one PE file = systemd-stub + kernel + initrd + command line +
 * os-release, which systemd-boot lists from `EFI/Linux/` and firmware can verify as a whole.
 *
 *   1. take the stub: the image's own systemd-stub, else the host's
 *   2. read the image's os-release, kernel version, vmlinuz; write the combined initrd
 *      (image initramfs + our addon, as for Type #1 entries)
 *   3. append the sections (pe.ts), streaming the initrd into the file (pe-file.ts):
 *      temp name, fsync, rename
 *   4. optionally sign it with sbsign
 *
 * Section order follows ukify: small text resources first, then the initrd, the kernel
 * last. Every UKI section is a singleton (UAPI UKI spec), so `.sbat` is not added: the
 * stub carries its own SBAT data, which is what shim checks; a kernel's own `.sbat`
 * would have to be merged into that one section, and Debian's kernels carry none.
 */
import { lstat, mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import { entryExists } from '../core/fs-probe.js';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { UserError, withContext } from '../core/errors.js';
import { run } from '../core/exec.js';
import { warn } from '../core/log.js';
import { fsyncPath, renameDurably, writeFileAtomic } from '../core/durable-file.js';
import { appendSections, parsePe, sectionData, type PeSection } from './pe.js';
import { writePeWithSections, type FileContent } from './pe-file.js';

/** PE optional header Subsystem of a UEFI application, which the UKI spec requires. */
const EFI_APPLICATION = 10;

/** systemd-boot-efi's stub, the same path in the image and on the host. */
export const STUB_PATH = 'usr/lib/systemd/boot/efi/linuxx64.efi.stub';

/** UKI resource sections in the order we place them. */
export const UKI_SECTION_ORDER = ['.osrel', '.cmdline', '.uname', '.splash', '.initrd', '.linux'] as const;
export type UkiSectionName = (typeof UKI_SECTION_ORDER)[number];

/** Large parts (the initrd) may be files, streamed into the UKI rather than read. */
export interface UkiContents<Content = Uint8Array> {
  osRelease: Uint8Array;
  cmdline: string;
  kernelVersion: string;
  linux: Uint8Array;
  initrd?: Content;
  splash?: Uint8Array;
}

/** The sections of a UKI, in placement order; absent or empty text parts leave no section. */
export function ukiSections<Content>(contents: UkiContents<Content>): Array<{ name: UkiSectionName; content: Uint8Array | Content }> {
  const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
  const byName: Partial<Record<UkiSectionName, Uint8Array | Content>> = {
    '.osrel': contents.osRelease,
    '.cmdline': contents.cmdline.length > 0 ? text(contents.cmdline) : undefined,
    '.uname': text(contents.kernelVersion),
    '.splash': contents.splash,
    '.initrd': contents.initrd,
    '.linux': contents.linux,
  };
  return UKI_SECTION_ORDER.flatMap((name) => {
    const content = byName[name];
    if (content === undefined || (content instanceof Uint8Array && content.byteLength === 0)) return [];
    return [{ name, content }];
  });
}

/** Refuse a stub that is not a plain EFI stub, or a kernel for another machine. */
export function checkUkiParts(stub: Uint8Array, stubPath: string, linux: Uint8Array): void {
  const stubHeaders = parsePe(stub, stubPath);
  if (stubHeaders.subsystem !== EFI_APPLICATION) {
    throw new UserError(`${stubPath} is not an EFI application (PE subsystem ${stubHeaders.subsystem})`, {
      hint: `use systemd-stub, /${STUB_PATH}`,
    });
  }
  if (stubHeaders.sections.some((s) => s.name === '.linux')) {
    throw new UserError(`${stubPath} already contains a kernel (.linux section): it is a UKI, not a stub`, {
      hint: `use the plain stub, /${STUB_PATH}`,
    });
  }
  const kernel = kernelPeHeaders(linux);
  if (kernel && kernel.machine !== stubHeaders.machine) {
    throw new UserError(
      `the kernel is for machine type 0x${kernel.machine.toString(16)} but the stub ${stubPath} for 0x${stubHeaders.machine.toString(16)}`,
      { hint: 'build the UKI from a stub of the same architecture as the kernel' },
    );
  }
  if (kernel?.sections.some((s) => s.name === '.sbat')) {
    warn(`the kernel carries its own .sbat section; the UKI keeps only the stub's SBAT data`);
  }
}

/** A PE bitmap starts with "BM"; systemd-stub shows nothing else. */
export function checkSplash(splash: Uint8Array, path: string): void {
  if (splash.byteLength < 2 || splash[0] !== 0x42 || splash[1] !== 0x4d) {
    throw new UserError(`${path} is not a BMP image`, { hint: 'systemd-stub shows only BMP splash images; convert it (e.g. convert splash.png BMP3:splash.bmp)' });
  }
}

/** The stub with the UKI sections appended, in memory. */
export function assembleUkiBytes(stub: Uint8Array, stubPath: string, contents: UkiContents): Uint8Array {
  checkUkiParts(stub, stubPath, contents.linux);
  const sections = ukiSections(contents).map(({ name, content }) => ({ name, data: content }));
  return appendSections(stub, sections, stubPath).image;
}

/** x86 and arm64 kernels built with the EFI stub are PE images; others are not checked. */
function kernelPeHeaders(linux: Uint8Array): ReturnType<typeof parsePe> | null {
  try {
    return parsePe(linux, 'kernel');
  } catch {
    return null;
  }
}

/** The image's stub if it ships one, else the host's. */
export async function findStub(rootfs: string): Promise<string> {
  const inImage = join(rootfs, STUB_PATH);
  if (await entryExists(inImage)) return inImage;
  const onHost = `/${STUB_PATH}`;
  if (await entryExists(onHost)) return onHost;
  throw new UserError(`no systemd-stub: neither the image nor this host has /${STUB_PATH}`, {
    hint: 'install systemd-boot-efi in the image (or on this host: apt-get install systemd-boot-efi)',
  });
}

/**
 * Resolve `rel` inside `rootfs`, following symlinks as if `rootfs` were `/`: an image's
 * `/etc/os-release` is commonly a symlink to `../usr/lib/os-release`, and an absolute
 * target must not escape to the host.
 */
export async function resolveInRoot(rootfs: string, rel: string): Promise<string> {
  let parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  for (let hops = 0; parts.length > 0; ) {
    const part = parts.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const candidate = join(rootfs, ...done, part);
    let st;
    try {
      st = await lstat(candidate);
    } catch {
      done.push(part, ...parts);
      break;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) throw new UserError(`${join(rootfs, rel)}: too many levels of symbolic links`, { hint: 'fix the symlink loop in the image' });
      const target = await readlink(candidate);
      if (posix.isAbsolute(target)) done.length = 0;
      parts = [...target.split('/').filter((p) => p !== '' && p !== '.'), ...parts];
      continue;
    }
    done.push(part);
  }
  return join(rootfs, ...done);
}

/** os-release per its man page: /etc/os-release, else /usr/lib/os-release. */
export async function readImageOsRelease(rootfs: string): Promise<Uint8Array> {
  for (const rel of ['etc/os-release', 'usr/lib/os-release']) {
    const path = await resolveInRoot(rootfs, rel);
    try {
      return await readFile(path);
    } catch {
      // try the next location
    }
  }
  throw new UserError(`${rootfs} has no os-release (/etc/os-release or /usr/lib/os-release)`, {
    hint: 'the image needs /usr/lib/os-release; the UKI carries it for the boot menu',
  });
}

export interface BuildUkiOptions {
  /** The image tree: its os-release and systemd-stub. */
  rootfs: string;
  /** The kernel to boot (src/boot/kernel.ts finds the one of a tree). */
  kernel: { kernelVersion: string; vmlinuz: string };
  /** The whole initrd: the image's initramfs with the addon appended (src/boot/prepare-root.ts). */
  initrd: string;
  /** The whole kernel command line, already merged. */
  cmdline: string;
  output: string;
  /** Default: findStub(rootfs). */
  stub?: string;
  splash?: string;
  signing?: SigningKey;
  /** The `.osrel` section; default: the image's os-release as it is. */
  osRelease?: Uint8Array;
}

export interface SigningKey {
  key: string;
  cert: string;
}

/** What the user passed, checked before any work: the output directory, the key, the splash. */
export async function checkUkiInputs(options: Pick<BuildUkiOptions, 'output' | 'signing' | 'splash'>): Promise<void> {
  await checkOutputDirectory(options.output);
  if (options.signing) await checkSigningKey(options.signing);
  if (options.splash !== undefined && !(await entryExists(options.splash))) {
    throw new UserError(`the splash image ${options.splash} does not exist`, { hint: 'pass the path of a BMP file' });
  }
}

/** A UKI of `kernel` and `initrd`, written to `output` durably, signed if asked. */
export async function buildUki(options: BuildUkiOptions): Promise<void> {
  await withContext(`Building the unified kernel image ${options.output}`, async () => {
    await checkUkiInputs(options);
    const stubPath = options.stub ?? (await findStub(options.rootfs));
    const { kernel } = options;
    const work = await mkdtemp(join(dirname(options.output), `.${basename(options.output)}.work-`));
    try {
      const [stub, osRelease, linux, splash] = await Promise.all([
        readFile(stubPath),
        options.osRelease ?? readImageOsRelease(options.rootfs),
        readFile(kernel.vmlinuz),
        options.splash === undefined ? Promise.resolve(undefined) : readFile(options.splash),
      ]);
      checkUkiParts(stub, stubPath, linux);
      if (splash && options.splash !== undefined) checkSplash(splash, options.splash);
      const contents: UkiContents<FileContent> = {
        osRelease,
        cmdline: options.cmdline,
        kernelVersion: kernel.kernelVersion,
        linux,
        initrd: { path: options.initrd },
      };
      if (splash) contents.splash = splash;
      if (!options.signing) {
        await writePeWithSections(stubPath, ukiSections(contents), options.output);
        return;
      }
      // sbsign writes its output in place: sign in the work directory, then rename.
      const unsigned = join(work, 'unsigned.efi');
      const signed = join(work, 'signed.efi');
      await writePeWithSections(stubPath, ukiSections(contents), unsigned);
      await signPe(unsigned, signed, options.signing);
      await fsyncPath(signed);
      await renameDurably(signed, options.output);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}

async function checkOutputDirectory(output: string): Promise<void> {
  let isDir = false;
  try {
    isDir = (await stat(dirname(output))).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) {
    throw new UserError(`cannot write ${output}: ${dirname(output)} is not a directory`, { hint: 'create the directory first, or choose another --output' });
  }
}

/** --sign-key and --sign-cert, which only make sense together; paths made absolute. */
export function signingKeyFromFlags(flags: { signKey?: string; signCert?: string }): SigningKey | undefined {
  if ((flags.signKey === undefined) !== (flags.signCert === undefined)) {
    throw new UserError('--sign-key and --sign-cert go together', { hint: 'pass both to sign for Secure Boot, or neither' });
  }
  if (flags.signKey === undefined || flags.signCert === undefined) return undefined;
  return { key: resolve(flags.signKey), cert: resolve(flags.signCert) };
}

/** sbsign reads a passphrase from the terminal, which a build has not: refuse early. */
async function checkSigningKey(signing: SigningKey): Promise<void> {
  let key: string;
  try {
    key = await readFile(signing.key, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read the signing key ${signing.key}: ${(err as Error).message}`, { hint: 'pass a PEM private key with --sign-key' });
  }
  if (key.includes('ENCRYPTED PRIVATE KEY') || /Proc-Type: 4,ENCRYPTED/.test(key)) {
    throw new UserError(`the signing key ${signing.key} is protected by a passphrase`, {
      hint: `decrypt it into a private file first: openssl pkey -in ${signing.key} -out key.pem`,
    });
  }
  if (!(await entryExists(signing.cert))) {
    throw new UserError(`the signing certificate ${signing.cert} does not exist`, { hint: 'pass a PEM X.509 certificate with --sign-cert' });
  }
}

/** Authenticode-sign a PE file with sbsign (Debian sbsigntool). */
export async function signPe(input: string, output: string, signing: SigningKey): Promise<void> {
  await run({
    description: `Signing ${input} for Secure Boot`,
    argv: ['sbsign', '--key', signing.key, '--cert', signing.cert, '--output', output, input],
    hint: 'check that --sign-key and --sign-cert are a matching PEM key and certificate',
  });
}

export interface UkiSectionInfo {
  name: string;
  virtualAddress: number;
  virtualSize: number;
  pointerToRawData: number;
  sizeOfRawData: number;
}

export interface UkiInspection {
  file: string;
  sections: UkiSectionInfo[];
  /** The text resources, for people: os-release, command line, kernel version. */
  osRelease?: string;
  cmdline?: string;
  uname?: string;
  signed: boolean;
}

export async function inspectUki(file: string): Promise<UkiInspection> {
  const bytes = await readPeFile(file);
  const pe = parsePe(bytes, file);
  const textOf = (name: string): string | undefined => {
    const section = pe.sections.find((s) => s.name === name);
    return section ? Buffer.from(sectionData(bytes, section)).toString('utf8').replace(/\0+$/, '') : undefined;
  };
  const inspection: UkiInspection = {
    file,
    sections: pe.sections.map((s: PeSection) => ({
      name: s.name,
      virtualAddress: s.virtualAddress,
      virtualSize: s.virtualSize,
      pointerToRawData: s.pointerToRawData,
      sizeOfRawData: s.sizeOfRawData,
    })),
    signed: (pe.dataDirectories[4]?.size ?? 0) > 0,
  };
  const osRelease = textOf('.osrel');
  const cmdline = textOf('.cmdline');
  const uname = textOf('.uname');
  if (osRelease !== undefined) inspection.osRelease = osRelease;
  if (cmdline !== undefined) inspection.cmdline = cmdline;
  if (uname !== undefined) inspection.uname = uname;
  return inspection;
}

export function renderInspection(inspection: UkiInspection): string {
  const hex = (n: number): string => `0x${n.toString(16)}`;
  const lines = [`${inspection.file}${inspection.signed ? ' (signed)' : ''}`, 'Name       VMA         Size'];
  for (const s of inspection.sections) lines.push(`${s.name.padEnd(10)} ${hex(s.virtualAddress).padEnd(11)} ${s.virtualSize}`);
  if (inspection.uname !== undefined) lines.push(`Kernel: ${inspection.uname}`);
  if (inspection.cmdline !== undefined) lines.push(`Command line: ${inspection.cmdline}`);
  return lines.join('\n') + '\n';
}

async function readPeFile(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as Error).message}`, { hint: 'pass the path of a UKI (.efi file)' });
  }
}

/** Write one section's bytes (as loaded, without file-alignment padding) to `output`. */
export async function extractSection(file: string, name: string, output: string): Promise<void> {
  const bytes = await readPeFile(file);
  const pe = parsePe(bytes, file);
  const section = pe.sections.find((s) => s.name === name);
  if (!section) {
    throw new UserError(`${file} has no ${name} section`, { hint: `its sections: ${pe.sections.map((s) => s.name).join(' ')}` });
  }
  await writeFileAtomic(output, sectionData(bytes, section));
}
