// Drives the dashboard in Debian's Chromium through playwright-core.
// Usage: node dashboard_check.cjs <url> <screenshot.png> <user-data-dir>
// Exits 0 when every check passed; otherwise prints what failed and exits 1.
"use strict";
const { chromium } = require("playwright-core");

const [url, screenshot, userDataDir] = process.argv.slice(2);
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const number = (text) => Number(String(text).replace(/[^0-9.]/g, ""));

(async () => {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: FLAGS,
    viewport: { width: 1400, height: 1000 },
  });
  const page = context.pages()[0] || (await context.newPage());
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  const result = {};
  try {
    await page.goto(url, { waitUntil: "load", timeout: 15000 });
    const row = page.locator('#jobs tbody tr[data-job="alerts-generator"]');
    await row.locator('[data-testid="job-status"]', { hasText: "running" }).waitFor({ timeout: 15000 });
    result.job = "alerts-generator running";

    const guarantee = await row.locator('[data-testid="job-guarantee"]').textContent();
    if (guarantee !== "none") throw new Error(`alerts-generator's guarantee shows '${guarantee}', expected 'none'`);
    const snapshotting = page.locator('#jobs tbody tr[data-job="windowed-snapshots"]');
    await snapshotting.locator('[data-testid="job-guarantee"]', { hasText: "exactly-once" }).waitFor({ timeout: 10000 });
    await snapshotting.locator('[data-testid="job-snapshot"]', { hasText: "#" }).waitFor({ timeout: 10000 });
    result.snapshot = await snapshotting.locator('[data-testid="job-snapshot"]').textContent();

    const items = row.locator('[data-testid="job-items"]');
    const first = number(await items.textContent());
    await page.waitForTimeout(2500);
    const second = number(await items.textContent());
    if (!(second > first)) throw new Error(`the job's event count did not change over 2.5 s: ${first} then ${second}`);
    result.items = [first, second];
    const rate = await row.locator('[data-testid="job-rate"]').textContent();
    if (!(number(rate) > 0)) throw new Error(`the job's events/s shows '${rate}', expected a positive rate`);
    result.rate = rate;

    const vertices = await page.locator("#dag g[data-vertex]").count();
    if (vertices < 2) throw new Error(`the DAG shows ${vertices} vertices, expected at least 2`);
    result.dag_vertices = vertices;
    await page.locator("#latency-charts polyline").first().waitFor({ timeout: 10000 });

    await page.selectOption("#query-map", "alerts");
    await page.fill("#predicate", "rule = 'velocity'");
    await page.click("#query-run");
    // The rows of this query, not of the page's first, unfiltered one.
    const rows = page.locator(`#query-results[data-predicate="rule = 'velocity'"] [data-testid="query-row"]`);
    await rows.first().waitFor({ timeout: 10000 });
    const values = await rows.locator("td:nth-child(2)").allTextContents();
    if (!values.length || !values.every((v) => v.includes('"rule":"velocity"'))) {
      throw new Error(`the predicate query returned rows that do not match rule = 'velocity': ${values.slice(0, 3).join(" | ")}`);
    }
    result.query_rows = values.length;
    result.query_status = await page.locator("#query-status").textContent();

    // The panel the job registered: alerts per rule, with the live changes.
    const registered = page.locator('[data-panel="alerts/rule"]');
    await registered.locator(".panel-live li").first().waitFor({ timeout: 10000 });
    await registered.locator(".panel-chart [data-group]").first().waitFor({ timeout: 10000 });
    result.live_alerts = await registered.locator(".panel-live li").count();
    result.rules = await registered.locator(".panel-chart [data-group]").count();

    // A panel the user adds with the form: the alerts per card.
    await page.selectOption("#panel-map", "alerts");
    await page.fill("#panel-field", "card");
    await page.click("#panel-add");
    const added = page.locator('[data-panel="alerts/card"]');
    await added.locator(".panel-chart [data-group]").first().waitFor({ timeout: 10000 });
    result.card_groups = await added.locator(".panel-chart [data-group]").count();

    // Let the charts gather a few seconds of history for the screenshot.
    await page.waitForTimeout(5000);
    await page.screenshot({ path: screenshot, fullPage: true });
    if (pageErrors.length) throw new Error(`the page raised errors: ${pageErrors.join("; ")}`);
    console.log(JSON.stringify(result));
    await context.close();
  } catch (e) {
    console.error(`dashboard check failed: ${e.message}\nchecks passed so far: ${JSON.stringify(result)}`);
    try { await page.screenshot({ path: screenshot.replace(/\.png$/, "-failure.png"), fullPage: true }); } catch {}
    await context.close();
    process.exit(1);
  }
})();
