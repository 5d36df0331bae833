#!/usr/bin/env node
// Reads vitest's JSON report and prints the one closing line CI reads:
// "N passed, N failed, N skipped". Exits non-zero when anything failed or no test ran.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const file = process.argv[2] ?? 'test-results/vitest.json';
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.log(`test summary: cannot read ${file}: ${err.message}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
// A test file that failed to load counts as a failure even though it ran no test.
const brokenFiles = (report.testResults ?? []).filter(
  (f) => f.status === 'failed' && (f.assertionResults ?? []).length === 0,
).length;
const failed = (report.numFailedTests ?? 0) + brokenFiles;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
const line = `${passed} passed, ${failed} failed, ${skipped} skipped`;
console.log(line);
// .ci/run prints it again as the very last line, after make's own messages.
writeFileSync(join(dirname(file), 'summary.txt'), line + '\n');
process.exit(failed > 0 || passed === 0 ? 1 : 0);
