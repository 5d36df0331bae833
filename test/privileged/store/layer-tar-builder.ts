/**
 * Builds layer tars in memory for store tests, with tar-stream's packer. Extended
 * attributes go into a hand-written PAX header so their values are raw bytes, exactly as
 * podman/buildah (Go archive/tar) and GNU tar write them.
 */
import tar from 'tar-stream';
import { Readable } from 'node:stream';

export interface TarItem {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  content?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  xattrs?: Record<string, Buffer>;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** One entry, packed by tar-stream, without the end-of-archive blocks. */
async function packOne(header: Parameters<ReturnType<typeof tar.pack>["entry"]>[0], content?: Buffer): Promise<Buffer> {
  const pack = tar.pack();
  const out: Buffer[] = [];
  pack.on('data', (c) => {
    out.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  if (content) pack.entry(header, content);
  else pack.entry(header);
  pack.finalize();
  await done;
  const all = Buffer.concat(out);
  return all.subarray(0, all.length - 1024);
}

/** A PAX extended header entry ('x') whose record values are raw bytes. */
async function paxEntry(records: Buffer): Promise<Buffer> {
  const block = Buffer.from(await packOne({ name: 'PaxHeader', type: 'file', size: records.length }, records));
  block[156] = 'x'.charCodeAt(0);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += block[i] as number;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return block;
}

export async function buildLayerTar(items: readonly TarItem[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const item of items) {
    if (item.xattrs && Object.keys(item.xattrs).length > 0) {
      parts.push(await paxEntry(Buffer.concat(Object.entries(item.xattrs).map(([k, v]) => paxRecord(`SCHILY.xattr.${k}`, v)))));
    }
    const type = item.type ?? 'file';
    const content = type === 'file' ? Buffer.from(item.content ?? '') : undefined;
    parts.push(
      await packOne(
        {
          name: item.name,
          type,
          mode: item.mode ?? (type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
          uid: item.uid ?? 0,
          gid: item.gid ?? 0,
          mtime: new Date(1_700_000_000_000),
          linkname: item.linkname,
          size: content?.length ?? 0,
        },
        content,
      ),
    );
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function tarStream(buf: Buffer): Readable {
  // Small chunks so entries straddle chunk boundaries, as they do off the network.
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += 777) chunks.push(buf.subarray(i, i + 777));
  return Readable.from(chunks);
}

/** security.capability v2: cap_net_raw in permitted, effective flag set. */
export const CAP_NET_RAW = Buffer.from([
  0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
]);

/** system.posix_acl_access: user::rw- user:1000:rwx group::r-- mask::rwx other::r-- */
export function aclUser1000(): Buffer {
  const entries: Array<[number, number, number]> = [
    [0x01, 6, 0xffffffff],
    [0x02, 7, 1000],
    [0x04, 4, 0xffffffff],
    [0x10, 7, 0xffffffff],
    [0x20, 4, 0xffffffff],
  ];
  const b = Buffer.alloc(4 + entries.length * 8);
  b.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    b.writeUInt16LE(tag, 4 + i * 8);
    b.writeUInt16LE(perm, 6 + i * 8);
    b.writeUInt32LE(id, 8 + i * 8);
  });
  return b;
}
