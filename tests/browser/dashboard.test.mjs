// Browser test of the switchboard dashboard (GET / of sb-gateway-ws) in
// Debian's headless Chromium, driven by playwright-core.
//
//   node tests/browser/dashboard.test.mjs WS_PORT TCP_PORT
//   SB_WS_PORT=... SB_TCP_PORT=... node tests/browser/dashboard.test.mjs
//
// With SB_PANEL_SECRET and SB_ADMIN_SECRET set, the hub has tokens (panel:
// home/# only; admin: everything) and the test signs in through the token
// form instead (tokenScenario).
//
// Prints one line per passed step; exits non-zero with a message on failure.
import net from "node:net";
import { chromium } from "playwright-core";

const TIMEOUT = 10_000;
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

  async request(line) {
    this.socket.write(line + "\n");
    return this.readLine(`the reply to ${JSON.stringify(line)}`);
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

// Waits for an .event with this topic and data in #events.
function waitForEvent(page, topic, data) {
  return waitFor(`an .event ${topic} ${data} in #events`, page.waitForFunction(
    ([t, d]) => [...document.querySelectorAll("#events .event")].some((event) => {
      const topicNode = event.querySelector(".topic"), dataNode = event.querySelector(".data");
      return topicNode && dataNode && topicNode.textContent.trim() === t && dataNode.textContent.trim() === d;
    }), [topic, data], { timeout: TIMEOUT }));
}

// An anonymous dashboard on a hub with tokens: the form comes up, a wrong
// secret is refused, the right one signs in, the refused requests go again
// (its `sub #` now gives home/... events only), and a reload signs in from
// sessionStorage without the form.
async function tokenScenario(page, url, tcp) {
  const secret = process.env.SB_PANEL_SECRET;
  await waitFor("the token form to show", page.locator("#token-form").waitFor({ state: "visible" }));
  step("the token form appeared after an unauthorized reply");
  await page.fill("#token-input-name", "panel");
  await page.fill("#token-input-secret", "wrong");
  await page.click("#token-form button[type=submit]");
  await waitFor("the refusal in #token-message", page.waitForFunction(
    () => /wrong secret/.test(document.getElementById("token-message").textContent), null,
    { timeout: TIMEOUT }));
  step("a wrong secret is refused in the form");
  await page.fill("#token-input-secret", secret);
  await page.click("#token-form button[type=submit]");
  await waitFor("#token-name to show panel", page.waitForFunction(
    () => document.getElementById("token-name").textContent.trim() === "panel", null,
    { timeout: TIMEOUT }));
  if (await page.isVisible("#token-form")) throw new Error("the token form is still shown");
  step("signed in as panel");
  // The refused requests went again in order: `sub #` before `clients`, so
  // once #clients lists this page, the broker has its subscription.
  const ownId = (await page.textContent("#client-id")).trim();
  await waitFor(`#clients to list ${ownId}`, page.waitForFunction(
    (id) => [...document.querySelectorAll("#clients li")].some((item) => item.textContent.trim() === id),
    ownId, { timeout: TIMEOUT }));
  // Both topics from one publisher, in order: home/ arriving proves other/ was held back.
  for (const line of ["pub other/y 1", "pub home/lamp on"]) {
    const answer = await tcp.request(line);
    if (answer !== "OK") throw new Error(`\`${line}\` answered ${JSON.stringify(answer)}`);
  }
  await waitForEvent(page, "home/lamp", "on");
  const topics = await page.$$eval("#events .event .topic", (nodes) => nodes.map((n) => n.textContent.trim()));
  if (topics.includes("other/y")) throw new Error(`other/y reached a home/# token: ${topics}`);
  step("the refused `sub #` went again: home/lamp arrived, other/y did not");
  await page.reload();
  await waitFor("#token-name to show panel after a reload", page.waitForFunction(
    () => document.getElementById("token-name").textContent.trim() === "panel", null,
    { timeout: TIMEOUT }));
  await page.fill("#command", "echo signed-in");
  await page.press("#command", "Enter");
  await waitFor("a .reply containing `OK signed-in`", page.locator("#replies .reply")
    .filter({ hasText: "OK signed-in" }).first().waitFor({ timeout: TIMEOUT }));
  if (await page.isVisible("#token-form")) throw new Error("the token form came back after a reload");
  step("a reload signs in from sessionStorage, without the form");
}

async function main() {
  const wsPort = port(process.argv[2] ?? process.env.SB_WS_PORT, "the ws port (SB_WS_PORT)");
  const tcpPort = port(process.argv[3] ?? process.env.SB_TCP_PORT, "the tcp port (SB_TCP_PORT)");
  const url = `http://127.0.0.1:${wsPort}/`;

  let browser = null;
  let tcp = null;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
      timeout: 30_000,
    });
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    const pageErrors = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));

    const response = await page.goto(url, { timeout: TIMEOUT });
    if (!response || response.status() !== 200) {
      throw new Error(`GET ${url} answered ${response ? response.status() : "nothing"}`);
    }
    step(`GET ${url} served the dashboard`);

    if (process.env.SB_PANEL_SECRET) {
      tcp = await LineClient.connect("127.0.0.1", tcpPort);
      await tcp.readLine("the greeting");
      const signedIn = await tcp.request(`auth admin ${process.env.SB_ADMIN_SECRET}`);
      if (signedIn !== "OK") throw new Error(`admin auth over TCP answered ${JSON.stringify(signedIn)}`);
      await tokenScenario(page, url, tcp);
      if (pageErrors.length) throw new Error(`JavaScript errors on the page: ${pageErrors.join("; ")}`);
      step("no JavaScript errors on the page");
      return;
    }

    await waitFor("#client-id to show a client id", page.waitForFunction(
      () => /^\S+-\d+$/.test(document.getElementById("client-id").textContent.trim()),
      null, { timeout: TIMEOUT }));
    const ownId = (await page.textContent("#client-id")).trim();
    step(`connected as ${ownId} (status: ${(await page.textContent("#status")).trim()})`);

    await page.fill("#command", "echo browser-hello");
    await page.press("#command", "Enter");
    await waitFor("a .reply containing `OK browser-hello`", page.locator("#replies .reply")
      .filter({ hasText: "OK browser-hello" }).first().waitFor({ timeout: TIMEOUT }));
    step("command box: `echo browser-hello` answered `OK browser-hello`");

    tcp = await LineClient.connect("127.0.0.1", tcpPort);
    const greeting = await tcp.readLine("the greeting");
    const greeted = /^OK switchboard \S+ client=(\S+)$/.exec(greeting);
    if (!greeted) throw new Error(`unexpected TCP greeting: ${JSON.stringify(greeting)}`);
    const tcpId = greeted[1];
    step(`TCP client connected as ${tcpId}`);

    const published = await tcp.request("pub home/lamp on");
    if (published !== "OK") throw new Error(`\`pub home/lamp on\` answered ${JSON.stringify(published)}`);
    await waitForEvent(page, "home/lamp", "on");
    step("event `home/lamp on` published over TCP appeared in #events");

    await waitFor(`#clients to list ${tcpId}`, page.waitForFunction(
      (id) => [...document.querySelectorAll("#clients li")].some((item) => item.textContent.trim() === id),
      tcpId, { timeout: TIMEOUT }));
    step(`#clients lists ${tcpId}`);

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
