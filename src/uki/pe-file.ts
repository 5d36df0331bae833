/**
 * Writes a PE image with appended sections to disk without holding it in memory: a UKI's
 * initrd can be hundreds of MB. Headers first, then each section (bytes or a file streamed
 * through), summed for the PE checksum as they are written; the checksum is patched into
 * the header last. Written durably (core/durable-file.ts): on failure nothing is left behind.
 */
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { UserError } from '../core/errors.js';
import { cancellation } from '../core/cancel.js';
import { replaceFile } from '../core/durable-file.js';
import { checksumOffset, headerBlock, parsePe, PeChecksum, planAppend, type AppendPlan, type SectionSpec } from './pe.js';

export interface FileContent {
  path: string;
}

export interface SectionSource {
  name: string;
  content: Uint8Array | FileContent;
  characteristics?: number;
}

const isFile = (c: Uint8Array | FileContent): c is FileContent => !(c instanceof Uint8Array);

/** Zero bytes, in bounded pieces, for the file-alignment padding between sections. */
const ZEROS = new Uint8Array(64 * 1024);

/**
 * Write `stubPath` + `sections` to `output`. Returns the plan (section placements) that
 * was written. `output` is replaced atomically; on failure nothing is left behind.
 */
export async function writePeWithSections(stubPath: string, sections: readonly SectionSource[], output: string): Promise<AppendPlan> {
  const stub = await readFile(stubPath);
  const headers = parsePe(stub, stubPath);
  const specs: SectionSpec[] = [];
  for (const section of sections) {
    const byteLength = isFile(section.content) ? (await stat(section.content.path)).size : section.content.byteLength;
    specs.push({ name: section.name, byteLength, ...(section.characteristics !== undefined ? { characteristics: section.characteristics } : {}) });
  }
  const plan = planAppend(headers, stub.byteLength, specs, stubPath);
  await replaceFile(output, async (tmp) => {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      const sum = new PeChecksum();
      let position = 0;
      const write = async (bytes: Uint8Array): Promise<void> => {
        cancellation.check();
        await fh.write(bytes, 0, bytes.byteLength, position);
        sum.add(bytes);
        position += bytes.byteLength;
      };
      const padTo = async (offset: number): Promise<void> => {
        while (position < offset) await write(ZEROS.subarray(0, Math.min(ZEROS.byteLength, offset - position)));
      };
      await write(headerBlock(stub, headers, plan));
      for (const [i, placement] of plan.placements.entries()) {
        const content = sections[i]!.content;
        await padTo(placement.pointerToRawData);
        if (isFile(content)) {
          for await (const chunk of createReadStream(content.path, { highWaterMark: 1 << 20 })) await write(chunk as Buffer);
        } else {
          await write(content);
        }
        if (position !== placement.pointerToRawData + placement.virtualSize) {
          throw new UserError(`the ${placement.name} section changed size while it was written`, {
            hint: isFile(content) ? `something else is writing ${content.path}; retry` : 'retry',
          });
        }
      }
      await padTo(plan.fileBytes);
      const field = new Uint8Array(4);
      new DataView(field.buffer).setUint32(0, sum.value(), true);
      await fh.write(field, 0, 4, checksumOffset(headers));
    } finally {
      await fh.close();
    }
  });
  return plan;
}
