// The pull under test for bench/sigpolicy.ts, bundled by it the way dist/bootc is (one
// CommonJS script) and run in a process of its own. mode "none": no policy
// (insecureAcceptAnything stands in, as when no policy file exists); "gpg" / "sigstore": the
// given policy file and registries.d. Prints one JSON line.
import { ImageTrust } from '../src/oci/image-trust.js';
import { pullImage } from '../src/oci/pull.js';
import { parseReference } from '../src/oci/reference.js';
import { acceptAnythingPolicy } from '../src/oci/signature-policy.js';

async function main(): Promise<void> {
  const [ref, cacheDir, architecture, mode, policyFile, registriesD] = process.argv.slice(2) as [string, string, string, string, string, string];
  // The policy check's own time, beside the whole pull's: on a loaded machine it is the steadier figure.
  let checkSeconds = 0;
  const check = ImageTrust.prototype.check;
  ImageTrust.prototype.check = async function (this: ImageTrust, ...args: Parameters<ImageTrust['check']>) {
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
}

void main();
