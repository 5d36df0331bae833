/**
 * `bootc image inspect IMAGE`: what an image is, from its manifest and config only (no
 * layer is downloaded). Rendering is separate from fetching so it is tested on golden text.
 */
import { humanBytes } from '../core/progress.js';
import { UserError } from '../core/errors.js';
import { formatPlatform, imageVersion, parsePlatform } from '../oci/manifest.js';
import { fetchManifestAndConfig, type ImageMetadata } from '../oci/pull.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { cancellation } from '../core/cancel.js';

export type InspectFormat = 'json' | 'humanreadable';

export interface InspectDocument {
  image: string;
  transport: string;
  manifestDigest: string;
  mediaType: string;
  configDigest: string;
  architecture: string;
  os: string;
  variant?: string;
  version: string | null;
  created: string | null;
  labels: Record<string, string>;
  layers: Array<{ digest: string; mediaType: string; size: number; diffId: string }>;
}

export function inspectDocument(image: ImageMetadata): InspectDocument {
  const doc: InspectDocument = {
    image: formatReference(image.reference),
    transport: image.reference.transport,
    manifestDigest: image.manifestDigest,
    mediaType: image.manifest.mediaType,
    configDigest: image.configDigest,
    architecture: image.config.architecture,
    os: image.config.os,
    version: imageVersion(image.config) ?? null,
    created: image.config.labels['org.opencontainers.image.created'] ?? image.config.created ?? null,
    labels: image.config.labels,
    layers: image.layers.map((l) => ({ digest: l.descriptor.digest, mediaType: l.descriptor.mediaType, size: l.descriptor.size, diffId: l.diffId })),
  };
  if (image.config.variant !== undefined) doc.variant = image.config.variant;
  return doc;
}

export function renderInspect(doc: InspectDocument, format: InspectFormat): string {
  if (format === 'json') return JSON.stringify(doc, null, 2) + '\n';
  const total = doc.layers.reduce((n, l) => n + l.size, 0);
  const lines = [
    `Image: ${doc.image}`,
    `Manifest digest: ${doc.manifestDigest}`,
    `Config digest: ${doc.configDigest}`,
    `Architecture: ${formatPlatform(doc)}`,
    `Version: ${doc.version ?? '(none)'}`,
    `Created: ${doc.created ?? '(unknown)'}`,
    `Layers: ${doc.layers.length} (${humanBytes(total)} compressed)`,
  ];
  for (const [i, l] of doc.layers.entries()) {
    lines.push(`  ${String(i + 1).padStart(3)}  ${l.digest}  ${humanBytes(l.size).padStart(10)}`);
    lines.push(`       diff-id ${l.diffId}`);
  }
  return lines.join('\n') + '\n';
}

export interface InspectArgs {
  image: string;
  platform?: string;
  format?: string;
}

export async function runImageInspect(args: InspectArgs, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const format = (args.format ?? 'humanreadable') as InspectFormat;
  if (format !== 'json' && format !== 'humanreadable') {
    throw new UserError(`unknown --format "${String(args.format)}"`, { hint: 'use --format json or --format humanreadable' });
  }
  const reference = parseReference(args.image);
  const image = await fetchManifestAndConfig(reference, {
    ...(args.platform !== undefined ? { platform: parsePlatform(args.platform) } : {}),
    signal: cancellation.signal,
  });
  out.write(renderInspect(inspectDocument(image), format));
}
