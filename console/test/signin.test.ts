// Sign-in: a good token opens the console; a bad one is refused with the server's reason; the
// token lives in sessionStorage only; sign-out clears it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { CONSOLE_URL, checkPage, launch, must, newPage, signIn } from "./harness.js";

let browser: Browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test("a wrong token is refused with the server's code and nothing is stored", async () => {
  const { context, page } = await newPage(browser);
  try {
    await page.goto(CONSOLE_URL);
    await page.getByLabel("API token").fill("flt_not-a-real-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    assert.match(await alert.innerText(), /Unauthenticated/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
  } finally {
    await context.close();
  }
});

test("the token is kept in sessionStorage only, never in the URL, and sign-out clears it", async () => {
  const { context, page } = await newPage(browser);
  try {
    const token = must("FLOTILLA_TOKEN");
    await signIn(page, token);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("flotilla.token")), token);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    assert.ok(!page.url().includes(token), "the token is not in the URL");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API token").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("flotilla.token")), null);
  } finally {
    await context.close();
  }
});

test("sign-in page: accessible at both sizes", async () => {
  for (const size of ["desktop", "phone"] as const) {
    const { context, page } = await newPage(browser, size);
    try {
      await page.goto(CONSOLE_URL);
      await page.getByLabel("API token").waitFor();
      const { checkA11y, screenshot } = await import("./harness.js");
      await checkA11y(page, `signin-${size}`);
      await screenshot(page, "signin", size);
    } finally {
      await context.close();
    }
  }
});

test("clusters page: accessible at both sizes", async () => {
  await checkPage(browser, "clusters", async (page) => {
    await page.getByRole("heading", { name: "Clusters" }).waitFor();
  });
});

test("first load: the console's JavaScript is at most 250 KB compressed", async () => {
  const { gzipSync } = await import("node:zlib");
  const { measure } = await import("./harness.js");
  const { context, page } = await newPage(browser);
  try {
    await page.goto(CONSOLE_URL);
    await page.getByLabel("API token").waitFor();
    const scripts = (await page.evaluate(() =>
      performance
        .getEntriesByType("resource")
        .filter((e) => (e as PerformanceResourceTiming).initiatorType === "script" || e.name.endsWith(".js"))
        .map((e) => ({ url: e.name, transfer: (e as PerformanceResourceTiming).encodedBodySize })),
    )) as { url: string; transfer: number }[];
    assert.ok(scripts.length > 0, "the page loaded its scripts");
    let gzipped = 0;
    let sent = 0;
    for (const s of scripts) {
      const body = Buffer.from(await (await fetch(s.url)).arrayBuffer());
      gzipped += gzipSync(body, { level: 9 }).length;
      sent += s.transfer;
    }
    measure("first-load JavaScript, gzip -9 of the files", gzipped, "bytes");
    measure("first-load JavaScript, bytes the server sent", sent, "bytes");
    assert.ok(gzipped <= 250 * 1024, `first-load JavaScript is ${gzipped} bytes compressed, over the 250 KB budget`);
  } finally {
    await context.close();
  }
});
