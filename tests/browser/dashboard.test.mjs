// Browser test of the switchboard dashboard (GET / of sb-gateway-ws) in
// Debian's headless Chromium, driven by playwright-core.
//
//   node tests/browser/dashboard.test.mjs WS_PORT TCP_PORT
//   SB_WS_PORT=... SB_TCP_PORT=... node tests/browser/dashboard.test.mjs
//   SB_WS_SCHEME=https: over the WebSocket gateway's TLS listener (certificate errors ignored)
//   SB_DEVICES=kitchen,porch: the hub has a connected device `kitchen` (its fake
//     answers `ask...` calls with `got ...` and writes `emit X` back as X) and
//     `porch` in a long backoff; the Devices panel is checked
//   SB_BUSY_POOL=slow: the pool `sleep` runs in, filled and queued by this test
//   SB_SCREENSHOT_DIR=DIR: desktop, phone and dark screenshots go there
//
// With SB_PANEL_SECRET and SB_ADMIN_SECRET set, the hub has tokens (panel:
// home/# only, no stats or clients; admin: everything) and the test signs in
// through the token form instead (tokenScenario).
//
// Prints one line per passed step; exits non-zero with a message on failure.
import net from "node:net";
import { chromium } from "playwright-core";

const TIMEOUT = 20_000;   // per wait: generous, the hub may run under ASan
const CHROMIUM = process.env.SB_CHROMIUM || "/usr/bin/chromium";

function port(value, name) {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1 || number > 65535) {
    throw new Error(`${name} must be a port number (argv or env), got ${JSON.stringify(value)}`);
  }
  return number;
}

function step(message) {
  console.log(`ok - ${message}`);
}

// A line-protocol client: connect, then read one line at a time with a deadline.
class LineClient {
  constructor(socket) {
    this.socket = socket;
    this.buffer = "";
    this.waiters = [];
    this.closed = false;
    this.async = [];
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => { this.buffer += chunk; this.wake(); });
    socket.on("close", () => { this.closed = true; this.wake(); });
    socket.on("error", () => {});
  }

  static connect(host, tcpPort) {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ host, port: tcpPort });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`TCP connect to ${host}:${tcpPort} timed out`));
      }, TIMEOUT);
      socket.once("connect", () => { clearTimeout(timer); resolve(new LineClient(socket)); });
      socket.once("error", (error) => { clearTimeout(timer); reject(error); });
    });
  }

  wake() {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  async readLine(what) {
    const deadline = Date.now() + TIMEOUT;
    for (;;) {
      const newline = this.buffer.indexOf("\n");
      if (newline >= 0) {
        const line = this.buffer.slice(0, newline).replace(/\r$/, "");
        this.buffer = this.buffer.slice(newline + 1);
        return line;
      }
      if (this.closed) throw new Error(`TCP connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line from TCP within ${TIMEOUT} ms waiting for ${what} (buffered: ${JSON.stringify(this.buffer)})`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  // Lines that come on their own (EVENT, MSG, RETAINED) are kept in `async`.
  async request(line) {
    this.socket.write(line + "\n");
    for (;;) {
      const reply = await this.readLine(`the reply to ${JSON.stringify(line)}`);
      if (!/^(EVENT|MSG|RETAINED) /.test(reply)) return reply;
      this.async.push(reply);
    }
  }

  async waitAsync(what, matches) {
    for (;;) {
      const index = this.async.findIndex(matches);
      if (index >= 0) return this.async.splice(index, 1)[0];
      this.async.push(await this.readLine(what));
    }
  }

  close() {
    this.socket.destroy();
  }
}


// Runs a playwright wait and turns its timeout into a readable failure.
async function waitFor(what, promise) {
  try {
    return await promise;
  } catch (error) {
    throw new Error(`timed out after ${TIMEOUT} ms waiting for ${what}\n  (${error.message.split("\n")[0]})`);
  }
}

// Waits until `fn(arg)` is true in the page.
function until(page, what, fn, arg) {
  return waitFor(what, page.waitForFunction(fn, arg, { timeout: TIMEOUT }));
}

async function ok(tcp, line) {
  const answer = await tcp.request(line);
  if (answer !== "OK" && !answer.startsWith("OK ")) throw new Error(`\`${line}\` answered ${JSON.stringify(answer)}`);
  return answer;
}

// The Now row of a topic: {value, points, age} or null.
function row(page, topic) {
  return page.evaluate((t) => {
    const tr = [...document.querySelectorAll("#topic-rows tr, #sys-rows tr")].find((r) => r.dataset.topic === t);
    if (!tr) return null;
    return { value: tr.querySelector("td.value").textContent.trim(), age: tr.querySelector("td.age").textContent.trim(),
             points: +tr.querySelector("svg.spark").dataset.points, sys: tr.parentElement.id === "sys-rows" };
  }, topic);
}

function untilRow(page, topic, what, check) {
  return until(page, `the Now row ${topic} to show ${what}`, ([t, source]) => {
    const tr = [...document.querySelectorAll("#topic-rows tr, #sys-rows tr")].find((r) => r.dataset.topic === t);
    if (!tr) return false;
    const r = { value: tr.querySelector("td.value").textContent.trim(), points: +tr.querySelector("svg.spark").dataset.points,
                flash: tr.querySelector("td.value").classList.contains("flash") };
    return new Function("r", "return " + source)(r);
  }, [topic, check]);
}

async function screenshots(page, name) {
  const dir = process.env.SB_SCREENSHOT_DIR;
  if (!dir) return;
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: `${dir}/${name}-desktop.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${dir}/${name}-phone.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: "dark" });
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: `${dir}/${name}-desktop-dark.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: "light" });
  step(`screenshots ${name}-{desktop,phone,desktop-dark}.png in ${dir}`);
}

// What a hub holds before the page opens: retained values and a numeric
// topic with history, so the Now panel is full at once.
async function prepareHub(tcp) {
  await ok(tcp, "pub -r home/lamp on");
  await ok(tcp, 'pub -r "home/hall sensor" "door closed"');
  for (const value of ["19.5", "20", "20.5", "21", "21.5"]) await ok(tcp, `pub home/temp ${value}`);
  await ok(tcp, "pub -r home/temp 22");
  const history = await ok(tcp, "history home/temp");
  if (!history.startsWith("OK 6 ")) throw new Error(`history home/temp answered ${JSON.stringify(history)}`);
  step("hub prepared: retained home/lamp, home/hall sensor; home/temp with 6 points of history");
}

async function nowPanel(page, tcp) {
  await untilRow(page, "home/lamp", "on", 'r.value === "on"');
  await untilRow(page, "home/hall sensor", "door closed", 'r.value === "door closed"');
  await untilRow(page, "home/temp", "22 and a 6-point chart from history", 'r.value === "22" && r.points === 6');
  step("Now: retained values shown; home/temp's chart has its 6 points of history");
  await ok(tcp, "pub home/temp 23");
  await untilRow(page, "home/temp", "23 flashing, 7 points", 'r.value === "23" && r.points === 7 && r.flash');
  step("Now: a live value updates its row, flashes and adds a chart point");
  // A client joining now is a $sys/clients/ID event: listed apart, under $sys.
  const late = await LineClient.connect("127.0.0.1", tcp.socket.remotePort);
  try {
    const lateId = /client=(\S+)$/.exec(await late.readLine("the greeting"))[1];
    await page.click("#sys summary");
    await untilRow(page, `$sys/clients/${lateId}`, "joined", 'r.value === "joined"');
    if ((await row(page, `$sys/clients/${lateId}`)).sys !== true) throw new Error("a $sys topic is among the user topics");
  } finally {
    late.close();
  }
  step("Now: $sys topics are in their own list");
  await page.fill("#filter", "hall");
  await until(page, "the filter to leave home/hall sensor only", () =>
    [...document.querySelectorAll("#topic-rows tr")].filter((r) => !r.hidden).map((r) => r.dataset.topic).join() === "home/hall sensor");
  await page.fill("#filter", "");
  step("Now: the filter narrows the list");
  // One click on a row's ✎, a value, Enter: published (retained, as the topic's value is).
  await ok(tcp, "sub home/lamp");
  await page.click('#topic-rows tr[data-topic="home/lamp"] td.act button');
  await page.fill('#topic-rows tr[data-topic="home/lamp"] td.value input', "off");
  await page.press('#topic-rows tr[data-topic="home/lamp"] td.value input', "Enter");
  await tcp.waitAsync("EVENT home/lamp off", (line) => line === "EVENT home/lamp off");
  await untilRow(page, "home/lamp", "off", 'r.value === "off"');
  const retained = await ok(tcp, "topics home/lamp");
  if (retained !== "OK 1 home/lamp off") throw new Error(`topics home/lamp: ${retained}`);
  step("Now: publishing from a row reached a TCP subscriber and stays retained");
}

async function actPanel(page) {
  const command = async (line) => {
    await page.fill("#command", line);
    await page.press("#command", "Enter");
  };
  await command("echo browser-hello");
  await waitFor("a reply `OK browser-hello` beside its request", page.locator("#replies li")
    .filter({ hasText: "> echo browser-hello" }).filter({ hasText: "OK browser-hello" }).first().waitFor({ timeout: TIMEOUT }));
  await command("history home/temp 3");
  await waitFor("the history reply", page.locator("#replies li .answer").filter({ hasText: /^OK 3 \d+:21\.5 \d+:22 \d+:23$/ })
    .first().waitFor({ timeout: TIMEOUT }));
  step("Act: requests answered beside them (echo, history home/temp 3)");
  await page.focus("#command");
  await page.press("#command", "ArrowUp");
  if (await page.inputValue("#command") !== "history home/temp 3") throw new Error("ArrowUp did not recall the last command");
  await page.press("#command", "ArrowUp");
  if (await page.inputValue("#command") !== "echo browser-hello") throw new Error("ArrowUp twice did not recall the first command");
  step("Act: ArrowUp recalls earlier commands");
  await until(page, "the command names from help", () => +document.getElementById("command").dataset.commands > 0);
  await page.fill("#command", "hist");
  await page.press("#command", "Tab");
  if (await page.inputValue("#command") !== "history ") throw new Error("Tab did not complete hist to history");
  await page.fill("#command", "");
  step("Act: Tab completes a command name from help");
}

async function clientsPanel(page, tcp, tcpId) {
  await until(page, `#clients to list ${tcpId} via TCP from 127.0.0.1 with a since`, (id) => {
    const tr = document.querySelector(`#clients tr[data-client="${id}"]`);
    return tr && tr.cells[1].textContent === "TCP" && /^127\.0\.0\.1/.test(tr.cells[2].textContent)
      && /ago$/.test(tr.cells[3].textContent);
  }, tcpId);
  step(`Clients: ${tcpId} via TCP, from 127.0.0.1, since shown`);
  await page.click(`#clients tr[data-client="${tcpId}"] button`);
  await page.fill(`#clients tr[data-tell-for="${tcpId}"] input`, "hello from the page");
  await page.press(`#clients tr[data-tell-for="${tcpId}"] input`, "Enter");
  const told = await tcp.waitAsync("the MSG from the page", (line) => line.startsWith("MSG "));
  if (!/^MSG ws-\d+ hello from the page$/.test(told)) throw new Error(`unexpected ${told}`);
  step("Clients: tell reached the TCP client");
  await until(page, "the gateways' connection counts", () =>
    /TCP 1/.test(document.getElementById("gateways").textContent) && /WebSocket 1/.test(document.getElementById("gateways").textContent));
  step("Work: connections by gateway counted (TCP 1, WebSocket 1)");
}

async function workPanel(page, tcp, pool) {
  // Two sleeps hold both of the pool's workers, a third waits in its queue.
  for (const tag of ["a", "b", "c"]) tcp.socket.write(`@${tag} sleep 10\n`);
  await until(page, `pool ${pool} busy 2/2 with 1 queued`, (name) => {
    const node = document.querySelector(`#pools .pool[data-service="${name}"]`);
    return node && node.dataset.workers === "2" && node.dataset.busy === "2" && node.dataset.queue === "1";
  }, pool);
  step(`Work: pool ${pool} shows 2 of 2 workers busy, 1 queued`);
  await until(page, "req/s and p99 charts with points, the broker up", (name) => {
    const node = document.querySelector(`#pools .pool[data-service="${name}"]`);
    const sparks = node ? node.querySelectorAll("svg.spark") : [];
    return sparks.length === 2 && +sparks[0].dataset.points >= 2 && +sparks[1].dataset.points >= 2
      && document.getElementById("broker-state").textContent === "broker up";
  }, pool);
  step("Work: req/s and p99 charts have points; broker up");
}

async function devicesPanel(page, names) {
  const [connected, away] = names;
  await until(page, `${connected} connected and ${away} in backoff with a countdown`, ([c, a]) => {
    const one = document.querySelector(`#device-list li[data-device="${c}"]`);
    const two = document.querySelector(`#device-list li[data-device="${a}"]`);
    return one && two && one.dataset.state === "connected" && two.dataset.state === "backoff"
      && /^backoff \d+\.\ds$/.test(two.querySelector(".state").textContent);
  }, [connected, away]);
  const first = await page.textContent(`#device-list li[data-device="${away}"] .state`);
  await until(page, "the backoff countdown to go down", ([a, was]) =>
    parseFloat(document.querySelector(`#device-list li[data-device="${a}"] .state`).textContent.slice(8)) < parseFloat(was.slice(8)),
    [away, first]);
  step(`Devices: ${connected} connected, ${away} ${first} counting down`);
  const box = `#device-list li[data-device="${connected}"]`;
  await page.fill(`${box} input`, "ask-status");
  await page.click(`${box} button:has-text("Call")`);
  await waitFor("the call's answer", page.locator(`${box} .answer`).filter({ hasText: "OK got ask-status" }).waitFor({ timeout: TIMEOUT }));
  step(`Devices: call ${connected} ask-status answered OK got ask-status`);
  await page.fill(`${box} input`, "emit temp 21.5");
  await page.click(`${box} button:has-text("Send")`);
  await waitFor("the send's answer", page.locator(`${box} .answer`).filter({ hasText: "OK sent" }).waitFor({ timeout: TIMEOUT }));
  await waitFor("the device's line in its recent lines", page.locator(`${box} .lines`).filter({ hasText: "temp 21.5" }).waitFor({ timeout: TIMEOUT }));
  step(`Devices: send answered OK sent; the device's line shows in its recent lines`);
}

// The connection drops (playwright closes the page's WebSocket between page
// and gateway): the header says so and counts down, the page connects
// again by itself, says `reconnected`, and live events flow again.
async function reconnectScenario(browser, url, tcp) {
  const page = await browser.newPage();
  const routes = [];
  await page.routeWebSocket(/.*/, (route) => { route.connectToServer(); routes.push(route); });
  try {
    await page.goto(url, { timeout: TIMEOUT });
    await until(page, "the page to connect", () => document.getElementById("status").textContent === "connected");
    await untilRow(page, "home/lamp", "its retained value", 'r.value !== ""');
    // Every text the header shows from now on, however briefly.
    await page.evaluate(() => {
      window.statusSeen = [];
      const status = document.getElementById("status");
      new MutationObserver(() => window.statusSeen.push(status.textContent)).observe(status, { childList: true, characterData: true, subtree: true });
    });
    routes[0].close({ code: 1001, reason: "test" });
    await until(page, "the header to count down to the next attempt",
      () => window.statusSeen.some((t) => /^disconnected, reconnecting in \d+ s$/.test(t)));
    await until(page, "the header to say reconnected", () => document.getElementById("status").textContent === "reconnected");
    if (routes.length !== 2) throw new Error(`expected a second WebSocket, saw ${routes.length}`);
    // Retained: the page's new `sub` may reach the broker after the publish,
    // and then the value comes as the retained one the subscription brings.
    await ok(tcp, "pub -r home/after-reconnect yes");
    await untilRow(page, "home/after-reconnect", "yes", 'r.value === "yes"');
    step("a dropped connection: the header counts down, the page reconnects by itself and events flow again");
  } finally {
    await page.close();
  }
}

// An anonymous dashboard on a hub with tokens: the form comes up, a wrong
// secret is refused, the right one signs in, the refused requests go again
// (its `sub #` now gives home/... values only), what the token may not run
// (stats, clients) is not shown, and a reload signs in from sessionStorage.
async function tokenScenario(page, tcp) {
  const secret = process.env.SB_PANEL_SECRET;
  await waitFor("the token form to show", page.locator("#token-form").waitFor({ state: "visible" }));
  step("the token form appeared after an unauthorized reply");
  await page.fill("#token-input-name", "panel");
  await page.fill("#token-input-secret", "wrong");
  await page.click("#token-form button[type=submit]");
  await until(page, "the refusal in #token-message",
    () => /wrong secret/.test(document.getElementById("token-message").textContent));
  step("a wrong secret is refused in the form");
  await page.fill("#token-input-secret", secret);
  await page.click("#token-form button[type=submit]");
  await until(page, "#token-name to show panel", () => document.getElementById("token-name").textContent.trim() === "panel");
  if (await page.isVisible("#token-form")) throw new Error("the token form is still shown");
  step("signed in as panel");
  await until(page, "Work and Clients hidden for a token without stats and clients", () =>
    document.getElementById("work").hidden && document.getElementById("clients-panel").hidden
    && !document.getElementById("now").hidden);
  step("what the token may not see (Work, Clients) is hidden");
  // The page's `sub #` went again once signed in; `history` answers, so the
  // subscription (sent before it) is in place.
  await page.fill("#command", "history home/temp");
  await page.press("#command", "Enter");
  await waitFor("history as panel", page.locator("#replies li .answer").filter({ hasText: /^OK 0$/ }).first().waitFor({ timeout: TIMEOUT }));
  for (const line of ["pub -r other/y 1", "pub -r home/lamp on"]) await ok(tcp, line);
  await untilRow(page, "home/lamp", "on", 'r.value === "on"');
  if (await row(page, "other/y")) throw new Error("other/y reached a home/# token");
  step("Now shows home/lamp, not other/y");
  await page.reload();
  await until(page, "#token-name to show panel after a reload", () => document.getElementById("token-name").textContent.trim() === "panel");
  await untilRow(page, "home/lamp", "on (retained, after the reload)", 'r.value === "on"');
  if (await page.isVisible("#token-form")) throw new Error("the token form came back after a reload");
  step("a reload signs in from sessionStorage, without the form");
}

async function main() {
  const wsPort = port(process.argv[2] ?? process.env.SB_WS_PORT, "the ws port (SB_WS_PORT)");
  const tcpPort = port(process.argv[3] ?? process.env.SB_TCP_PORT, "the tcp port (SB_TCP_PORT)");
  // SB_WS_SCHEME=https: the gateway's TLS listener, with the test's self-signed certificate.
  const scheme = process.env.SB_WS_SCHEME === "https" ? "https" : "http";
  const url = `${scheme}://127.0.0.1:${wsPort}/`;

  let browser = null;
  let tcp = null;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             ...(scheme === "https" ? ["--ignore-certificate-errors"] : [])],
      timeout: 30_000,
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(TIMEOUT);
    const pageErrors = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    const outside = [];
    page.on("request", (r) => { if (!r.url().startsWith(url) && !r.url().startsWith(url.replace(/^http/, "ws"))) outside.push(r.url()); });

    tcp = await LineClient.connect("127.0.0.1", tcpPort);
    const greeting = await tcp.readLine("the greeting");
    const greeted = /^OK switchboard \S+ client=(\S+)$/.exec(greeting);
    if (!greeted) throw new Error(`unexpected TCP greeting: ${JSON.stringify(greeting)}`);
    const tcpId = greeted[1];

    if (process.env.SB_PANEL_SECRET) {
      await ok(tcp, `auth admin ${process.env.SB_ADMIN_SECRET}`);
      const response = await page.goto(url, { timeout: TIMEOUT });
      if (!response || response.status() !== 200) throw new Error(`GET ${url} answered ${response ? response.status() : "nothing"}`);
      step(`GET ${url} served the dashboard`);
      await tokenScenario(page, tcp);
      await screenshots(page, "signed-in");
    } else {
      await prepareHub(tcp);
      const response = await page.goto(url, { timeout: TIMEOUT });
      if (!response || response.status() !== 200) throw new Error(`GET ${url} answered ${response ? response.status() : "nothing"}`);
      step(`GET ${url} served the dashboard (${(await response.body()).length} bytes)`);
      await until(page, "#client-id to show a client id", () => /^\S+-\d+$/.test(document.getElementById("client-id").textContent.trim()));
      step(`connected as ${(await page.textContent("#client-id")).trim()} (status: ${(await page.textContent("#status")).trim()})`);
      await nowPanel(page, tcp);
      await actPanel(page);
      await clientsPanel(page, tcp, tcpId);
      if (process.env.SB_DEVICES) await devicesPanel(page, process.env.SB_DEVICES.split(","));
      if (process.env.SB_BUSY_POOL) await workPanel(page, tcp, process.env.SB_BUSY_POOL);
      await screenshots(page, "dashboard");
      if (scheme === "http") await reconnectScenario(browser, url, tcp);
    }
    if (outside.length) throw new Error(`the page asked for something outside the hub: ${outside.join(" ")}`);
    step("nothing was fetched from outside the hub");
    if (pageErrors.length) throw new Error(`JavaScript errors on the page: ${pageErrors.join("; ")}`);
    step("no JavaScript errors on the page");
  } finally {
    if (tcp) tcp.close();
    if (browser) await browser.close().catch(() => {});
  }
}

main().then(
  () => console.log("dashboard browser test passed"),
  (error) => {
    console.error(`FAIL: ${error.message}`);
    process.exitCode = 1;
  });
