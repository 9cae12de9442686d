// dashboard_load.mjs — what the dashboard's page does under load, measured
// inside the page (bench/dashboard_load.py starts the hub and the load).
//
//   node bench/dashboard_load.mjs WS_PORT TOPICS SECONDS
//
// Opens GET / in Debian's headless Chromium (playwright-core from
// tests/browser/node_modules), waits until TOPICS topic rows exist, then for
// SECONDS records in the page: the interval between animation frames, the
// lateness of a 50 ms timer (event-loop delay), long tasks (> 50 ms), and the
// page's own render count and longest render, and Chromium's own busy time
// of the page's main thread (CDP Performance.getMetrics: task, script,
// layout, style, in ms per second). Prints one JSON object.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "tests", "browser", "package.json"));
const { chromium } = require("playwright-core");

const [wsPort, topicCount, seconds] = process.argv.slice(2).map(Number);
if (!wsPort || !topicCount || !seconds) {
  console.error("usage: node bench/dashboard_load.mjs WS_PORT TOPICS SECONDS");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.SB_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`http://127.0.0.1:${wsPort}/`);
  await page.waitForFunction((n) => document.querySelectorAll("#topic-rows tr").length >= n, topicCount,
                             { timeout: 60_000 });
  // SB_BENCH_CSS: extra CSS for an experiment (what costs what).
  if (process.env.SB_BENCH_CSS) await page.addStyleTag({ content: process.env.SB_BENCH_CSS });
  // Chromium's own account of the main thread's busy time (CDP Performance).
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  const metrics = async () => Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
  const before = await metrics();
  const figures = await page.evaluate(async (ms) => {
    const frames = [], lags = [], longTasks = [];
    const observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) longTasks.push(e.duration); });
    try { observer.observe({ type: "longtask", buffered: false }); } catch (e) { /* not supported */ }
    const perf = window.switchboard.perf;
    const start = { renders: perf.renders, frames: perf.frames, renderMs: perf.totalRenderMs, frameMs: perf.frameMs };
    perf.maxRenderMs = 0;
    let last = performance.now(), running = true;
    const onFrame = (now) => { frames.push(now - last); last = now; if (running) requestAnimationFrame(onFrame); };
    requestAnimationFrame(onFrame);
    let expected = performance.now() + 50;
    const timer = setInterval(() => { const now = performance.now(); lags.push(Math.max(0, now - expected)); expected = now + 50; }, 50);
    await new Promise((resolve) => setTimeout(resolve, ms));
    running = false;
    clearInterval(timer);
    observer.disconnect();
    const pct = (values, p) => {
      const sorted = [...values].sort((a, b) => a - b);
      return sorted.length ? +sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))].toFixed(1) : null;
    };
    return {
      seconds: ms / 1000,
      topics: document.querySelectorAll("#topic-rows tr").length,
      events_per_s: +((perf.frames - start.frames) / (ms / 1000)).toFixed(0),
      renders_per_s: +((perf.renders - start.renders) / (ms / 1000)).toFixed(1),
      render_max_ms: +perf.maxRenderMs.toFixed(1),
      render_ms_per_s: +((perf.totalRenderMs - start.renderMs) / (ms / 1000)).toFixed(1),
      messages_ms_per_s: +((perf.frameMs - start.frameMs) / (ms / 1000)).toFixed(1),
      fps: +(frames.length / (ms / 1000)).toFixed(1),
      frame_ms: { p50: pct(frames, 0.5), p95: pct(frames, 0.95), p99: pct(frames, 0.99), max: pct(frames, 1) },
      loop_delay_ms: { p50: pct(lags, 0.5), p95: pct(lags, 0.95), p99: pct(lags, 0.99), max: pct(lags, 1) },
      long_tasks: longTasks.length,
      long_task_ms_total: +longTasks.reduce((a, b) => a + b, 0).toFixed(0),
      heap_mb: performance.memory ? +(performance.memory.usedJSHeapSize / 1048576).toFixed(1) : null,
    };
  }, seconds * 1000);
  const after = await metrics();
  const perSecond = (name) => +((after[name] - before[name]) * 1000 / seconds).toFixed(1);
  figures.main_thread_ms_per_s = { task: perSecond("TaskDuration"), script: perSecond("ScriptDuration"),
                                   layout: perSecond("LayoutDuration"), style: perSecond("RecalcStyleDuration") };
  console.log(JSON.stringify(figures));
} finally {
  await browser.close();
}
