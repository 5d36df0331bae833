import { describe, expect, it } from 'vitest';
import { targetImageOf } from '../../../src/cli/install.js';
import { parseReference } from '../../../src/oci/reference.js';

describe('targetImageOf', () => {
  const source = parseReference('oci:/srv/images/os:v1');
  it('defaults to the source image, with its transport', () => {
    expect(targetImageOf({}, source)).toEqual({ image: '/srv/images/os:v1', transport: 'oci' });
  });
  it('reads --target-imgref as a registry reference unless --target-transport says otherwise', () => {
    expect(targetImageOf({ targetImgref: 'quay.io/example/os:latest', targetTransport: 'registry' }, source)).toEqual({
      image: 'quay.io/example/os:latest',
      transport: 'registry',
    });
    expect(targetImageOf({ targetImgref: '/srv/other.tar', targetTransport: 'oci-archive' }, source)).toEqual({
      image: '/srv/other.tar',
      transport: 'oci-archive',
    });
  });
});
