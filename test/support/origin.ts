/** An origin record for tests whose deployments are plain directories; `fields` override. */
import type { Origin } from '../../src/deploy/origin.js';

export function testOrigin(id: string, fields: Partial<Origin> = {}): Origin {
  return {
    version: 1,
    stateroot: 'default',
    id,
    image: { image: 'localhost:5000/os:latest', transport: 'registry' },
    manifestDigest: `sha256:${'a'.repeat(64)}`,
    configDigest: `sha256:${'c'.repeat(64)}`,
    architecture: 'amd64',
    imageVersion: null,
    imageCreated: null,
    kernelVersion: '6.1.0',
    kargs: [],
    kargsFromImage: [],
    createdAt: '2026-01-01T00:00:00.000Z',
    pinned: false,
    ...fields,
  };
}
