// Browser test of the switchboard dashboard (GET / of sb-gateway-ws) in
// Debian's headless Chromium, driven by playwright-core.
//
//   node tests/browser/dashboard.test.mjs WS_PORT TCP_PORT
//   SB_WS_PORT=... SB_TCP_PORT=... node tests/browser/dashboard.test.mjs
//   SB_WS_SCHEME=https: over the WebSocket gateway's TLS listener (certificate errors ignored)
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
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    const pageErrors = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));

    const response = await page.goto(url, { timeout: TIMEOUT });
    if (!response || response.status() !== 200) {
      throw new Error(`GET ${url} answered ${response ? response.status() : "nothing"}`);
    }
    step(`GET ${url} served the dashboard`);

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
    await waitFor("an .event with topic `home/lamp` and data `on` in #events", page.waitForFunction(
      () => [...document.querySelectorAll("#events .event")].some((event) => {
        const topic = event.querySelector(".topic"), data = event.querySelector(".data");
        return topic && data && topic.textContent.trim() === "home/lamp" && data.textContent.trim() === "on";
      }), null, { timeout: TIMEOUT }));
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
