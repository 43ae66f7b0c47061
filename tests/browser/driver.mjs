// Headless Chromium driven by playwright-core, controlled line by line from pytest.
// stdin: one JSON command per line; stdout: one JSON reply per line ({ok, value} or {ok:false, error}).
// Commands: open {url}, waitFor {js, timeout} (a page expression, resolves when truthy),
// eval {js}, screenshot {path}, errors {}, close {}.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const profile = mkdtempSync(join(tmpdir(), "acme-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1600, height: 1000 },
});
const page = context.pages()[0] || (await context.newPage());
const problems = [];
page.on("pageerror", (e) => problems.push("pageerror: " + e.message));
page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
// The page must not reach anything but its own server.
const requests = [];
page.on("request", (r) => requests.push(r.url()));

function reply(obj) { process.stdout.write(JSON.stringify(obj) + "\n"); }

async function shutdown(code) {
  try { await context.close(); } catch { /* already gone */ }
  rmSync(profile, { recursive: true, force: true });
  process.exit(code);
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { reply({ ok: false, error: "bad json: " + e.message }); continue; }
  try {
    switch (cmd.cmd) {
      case "open":
        await page.goto(cmd.url, { waitUntil: "load", timeout: cmd.timeout || 15000 });
        reply({ ok: true });
        break;
      case "waitFor": {
        // Poll with page.evaluate (DevTools protocol) rather than waitForFunction, which
        // evals inside the page and so is (rightly) refused by the page's CSP.
        const deadline = Date.now() + (cmd.timeout || 10000);
        let value;
        for (;;) {
          value = await page.evaluate(cmd.js);
          if (value) break;
          if (Date.now() > deadline) throw new Error(`timed out after ${cmd.timeout || 10000} ms waiting for ${cmd.js}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        reply({ ok: true, value });
        break;
      }
      case "eval":
        reply({ ok: true, value: await page.evaluate(cmd.js) });
        break;
      case "screenshot":
        await page.screenshot({ path: cmd.path, fullPage: true });
        reply({ ok: true, value: cmd.path });
        break;
      case "errors":
        reply({ ok: true, value: { problems, requests } });
        break;
      case "close":
        reply({ ok: true });
        await shutdown(0);
        break;
      default:
        reply({ ok: false, error: "unknown command " + cmd.cmd });
    }
  } catch (e) {
    reply({ ok: false, error: String(e && e.message ? e.message : e) });
  }
}
await shutdown(0);
