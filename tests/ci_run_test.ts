/**
 * .ci/run's closing line, `N passed, N failed`, against stand-ins for make and Deno, so
 * each way a CI run can fail is checked without running the suite itself.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runProcess } from "./helpers/server_process.ts";

const CI_RUN = fileURLToPath(new URL("../.ci/run", import.meta.url));

/** What each stand-in step prints and how it exits. */
interface Steps {
  readonly check: { readonly exit: number };
  readonly test: { readonly output: string; readonly exit: number };
  readonly bundle: { readonly exit: number };
  readonly smoke: { readonly output: string; readonly exit: number };
}

/** Runs a copy of .ci/run in a sandbox whose Makefile and tools/deno.sh play `steps`;
 * returns its exit status and last line. */
async function ciRun(steps: Steps): Promise<{ code: number; lastLine: string; stdout: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-ci-" });
  try {
    await Deno.mkdir(`${dir}/.ci`);
    await Deno.mkdir(`${dir}/tools`);
    await Deno.copyFile(CI_RUN, `${dir}/.ci/run`);
    const say = (text: string) => text.split("\n").map((line) => `\t@echo '${line}'`).join("\n");
    await Deno.writeTextFile(
      `${dir}/Makefile`,
      [
        "check:",
        `\t@exit ${steps.check.exit}`,
        "test:",
        say(steps.test.output),
        `\t@exit ${steps.test.exit}`,
        "bundle:",
        `\t@exit ${steps.bundle.exit}`,
        "",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      `${dir}/tools/deno.sh`,
      `#!/bin/sh\nprintf '%s\\n' '${steps.smoke.output}'\nexit ${steps.smoke.exit}\n`,
    );
    await Deno.chmod(`${dir}/tools/deno.sh`, 0o755);
    const result = await runProcess("bash", [`${dir}/.ci/run`], { timeoutMs: 30_000 });
    return { code: result.code, lastLine: result.stdout.trim().split("\n").at(-1) ?? "", stdout: result.stdout };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const PASSING: Steps = {
  check: { exit: 0 },
  test: { output: "ok | 300 passed | 0 failed (2m)", exit: 0 },
  bundle: { exit: 0 },
  smoke: { output: "ok | 40 passed | 0 failed (40s)", exit: 0 },
};

Deno.test("ci: a green run ends with the sum of the test runs and exits 0", async () => {
  const result = await ciRun(PASSING);
  assert.equal(result.lastLine, "340 passed, 0 failed", result.stdout);
  assert.equal(result.code, 0);
});

Deno.test("ci: failed tests are counted from the runs' summaries", async () => {
  const result = await ciRun({ ...PASSING, test: { output: "FAILED | 298 passed | 2 failed (2m)", exit: 1 } });
  assert.equal(result.lastLine, "338 passed, 2 failed", result.stdout);
  assert.notEqual(result.code, 0);
});

Deno.test("ci: a test run with no summary, failed checks or a failed bundle each count as a failure", async () => {
  const crashed = await ciRun({ ...PASSING, test: { output: "error: Module not found", exit: 1 } });
  assert.equal(crashed.lastLine, "40 passed, 1 failed", crashed.stdout);
  assert.notEqual(crashed.code, 0);

  const checks = await ciRun({ ...PASSING, check: { exit: 2 } });
  assert.equal(checks.lastLine, "340 passed, 1 failed", checks.stdout);
  assert.notEqual(checks.code, 0);

  const bundle = await ciRun({ ...PASSING, bundle: { exit: 2 } });
  assert.equal(bundle.lastLine, "300 passed, 1 failed", bundle.stdout);
  assert.notEqual(bundle.code, 0);

  const afterwards = await ciRun({ ...PASSING, test: { output: "ok | 300 passed | 0 failed (2m)", exit: 1 } });
  assert.equal(afterwards.lastLine, "340 passed, 1 failed", afterwards.stdout);
  assert.notEqual(afterwards.code, 0);
});
