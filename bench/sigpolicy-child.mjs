// The pull under test for bench/sigpolicy.ts, run from the built dist/ in a process of its
// own. mode "none": no policy (insecureAcceptAnything stands in, as when no policy file
// exists); "gpg" / "sigstore": the given policy file and registries.d. Prints one JSON line.
import { ImageTrust } from '../dist/oci/image-trust.js';
import { pullImage } from '../dist/oci/pull.js';
import { parseReference } from '../dist/oci/reference.js';
import { acceptAnythingPolicy } from '../dist/oci/signature-policy.js';

const [ref, cacheDir, architecture, mode, policyFile, registriesD] = process.argv.slice(2);
// The policy check's own time, beside the whole pull's: on a loaded machine it is the steadier figure.
let checkSeconds = 0;
const check = ImageTrust.prototype.check;
ImageTrust.prototype.check = async function (...args) {
  const t = process.hrtime.bigint();
  try {
    return await check.apply(this, args);
  } finally {
    checkSeconds += Number(process.hrtime.bigint() - t) / 1e9;
  }
};
const started = process.hrtime.bigint();
const trust =
  mode === 'none'
    ? ImageTrust.of(acceptAnythingPolicy('none'))
    : await ImageTrust.load({ policyPaths: { explicit: policyFile }, registriesDPaths: { dir: registriesD } });
const pulled = await pullImage(parseReference(ref), { cacheDir, platform: { os: 'linux', architecture }, trust });
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
process.stdout.write(JSON.stringify({ seconds, checkSeconds, bytesFetched: pulled.bytesFetched, signatures: pulled.trust.signatures }) + '\n');
