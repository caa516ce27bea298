// Admin: a token created on the page (its secret shown once, kept nowhere) signs in a second
// console; revoking it from the first sends the second back to sign-in with the server's reason;
// the audit page lists the create and revoke as ListAuditEvents does. One flow by keyboard only.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { checkPage, go, launch, newPage, signIn, uniqueId } from "./harness.js";
import { api, apiAs, v1 } from "./api.js";
import { eventually, present } from "./support.js";

let browser: Browser;
const made: string[] = [];

before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
  // Tokens a failed run left behind are revoked (tokens cannot be deleted).
  for (const name of made) await api.admin.revokeApiToken({ tokenId: name }).catch(() => undefined);
});

async function tokenByName(name: string) {
  const res = await api.admin.listApiTokens({ pageSize: 1000, showRevoked: true });
  return res.tokens.find((t) => t.name === name);
}

/** Everything the page keeps in web storage, to show a secret is not there. */
async function storage(page: Page): Promise<string> {
  return page.evaluate(() => JSON.stringify({ s: { ...sessionStorage }, l: { ...localStorage }, url: location.href }));
}

test("a created token's secret is shown once, signs in elsewhere, and revoking it signs that console out with the reason", async () => {
  const admin = await newPage(browser);
  const other = await newPage(browser);
  try {
    const name = uniqueId("console-tok");
    made.push(name);
    await signIn(admin.page);
    await go(admin.page, "admin/tokens");
    await admin.page.getByLabel("Name").fill(name);
    await admin.page.getByLabel("Role").selectOption({ label: "viewer" });
    await admin.page.getByLabel("Expires in (days)").fill("1");
    await admin.page.getByRole("button", { name: "Create token" }).click();
    const secretBox = admin.page.getByTestId("token-secret");
    await secretBox.waitFor();
    const secret = (await secretBox.innerText()).trim();
    assert.match(secret, /^flt_/);
    assert.match(await admin.page.locator(".secret-once").innerText(), /shown this once/);
    // The server's view: a viewer token of that name, expiring in about a day.
    const tok = await tokenByName(name);
    assert.equal(tok?.role, v1.Role.VIEWER);
    const expiresIn = Number(present(tok?.expireTime, "the token's expire_time").seconds) * 1000 - Date.now();
    assert.ok(expiresIn > 23 * 3600e3 && expiresIn < 25 * 3600e3, `expires in ${expiresIn} ms`);
    // The console keeps the secret nowhere but on screen, and forgets it on Done.
    assert.ok(!(await storage(admin.page)).includes(secret));
    await admin.page.getByRole("button", { name: "Done" }).click();
    assert.equal(await admin.page.getByTestId("token-secret").count(), 0);
    assert.ok(!(await admin.page.content()).includes(secret));

    // A second console signs in with it.
    await signIn(other.page, secret);
    await go(other.page, "operations");
    await other.page.getByRole("heading", { name: "Operations" }).waitFor();

    // Revoke it from the first, with the typed confirmation.
    const row = admin.page.locator(`tr[data-token="${name}"]`);
    await row.getByRole("button", { name: `Revoke ${name}` }).click();
    const dialog = admin.page.getByRole("dialog");
    const confirm = dialog.getByRole("button", { name: "Revoke token" });
    assert.equal(await confirm.isDisabled(), true, "nothing typed yet");
    await dialog.getByLabel(/to confirm/).fill(name);
    await confirm.click();
    await admin.page.getByText(`Token ${name} revoked`).waitFor();
    await row.waitFor({ state: "detached" });
    assert.ok((await tokenByName(name))?.revokeTime, "the server has it revoked");

    // The second console's next call is refused: it is back at sign-in, saying why.
    await go(other.page, "admin/audit");
    const notice = other.page.getByRole("status").filter({ hasText: "signed out" });
    await notice.waitFor();
    const text = await notice.innerText();
    assert.match(text, /revoked/);
    assert.ok(text.includes(name), text);
    await other.page.getByLabel("API token").waitFor();
    assert.equal(await other.page.evaluate(() => sessionStorage.getItem("flotilla.token")), null);

    // The audit page lists both, as ListAuditEvents does.
    for (const [method, target] of [
      ["/flotilla.v1.AdminService/CreateApiToken", `tokens/${name}`],
      ["/flotilla.v1.AdminService/RevokeApiToken", `tokens/${tok.id}`],
    ] as const) {
      const events = (await api.admin.listAuditEvents({ pageSize: 200, filter: `method = "${method}"` })).events;
      const ev = events.find((e) => e.target === target);
      assert.ok(ev, `ListAuditEvents has ${method} ${target}`);
      await go(admin.page, "admin/audit");
      await admin.page.getByLabel("Method").fill(method);
      await admin.page.getByRole("button", { name: "Apply filters" }).click();
      await admin.page.getByText(`Filter: method = "${method}"`).waitFor();
      // Every row shown is one of the API's, in its order (once the filtered page has loaded).
      const want = events.slice(0, 50).map((e) => e.id);
      let shown: (string | undefined)[] = [];
      for (let i = 0; i < 50 && JSON.stringify(shown) !== JSON.stringify(want); i++) {
        await admin.page.waitForTimeout(100);
        shown = await admin.page.locator("tr[data-event]").evaluateAll((rs) => rs.map((r) => (r as HTMLElement).dataset.event));
      }
      assert.deepEqual(shown, want);
      const cells = await admin.page.locator(`tr[data-event="${ev.id}"]`).innerText();
      assert.ok(cells.includes(target) && cells.includes(ev.tokenName) && cells.includes("OK"), cells);
    }
    assert.deepEqual([...admin.problems, ...other.problems], []);
  } finally {
    await admin.context.close();
    await other.context.close();
  }
});

/** Presses Tab until the focused element's label or text is `name`; checks focus is visible. */
async function tabTo(page: Page, name: string): Promise<void> {
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => {
      const el = document.activeElement as HTMLInputElement | null;
      if (!el) return { label: "", visible: false };
      const label = el.labels?.[0]?.textContent ?? el.getAttribute("aria-label") ?? el.textContent ?? "";
      const style = getComputedStyle(el);
      return { label: label.trim(), visible: el.matches(":focus-visible") && style.outlineStyle !== "none" && style.outlineWidth !== "0px" };
    });
    if (focused.label === name) {
      assert.ok(focused.visible, `focus on ${name} is visible`);
      return;
    }
  }
  assert.fail(`Tab never reached ${name}`);
}

test("keyboard only: create a token, then revoke it through the typed confirmation", async () => {
  const { context, page } = await newPage(browser);
  try {
    const name = uniqueId("kbd-tok");
    made.push(name);
    await signIn(page);
    await go(page, "admin/tokens");
    await page.getByRole("heading", { name: "Create a token" }).waitFor();
    await tabTo(page, "Name");
    await page.keyboard.type(name);
    await tabTo(page, "Create token");
    await page.keyboard.press("Enter");
    await page.getByTestId("token-secret").waitFor();
    assert.ok(await tokenByName(name), "the server has the token");
    await tabTo(page, "Done");
    await page.keyboard.press("Space");
    await tabTo(page, `Revoke ${name}`);
    await page.keyboard.press("Enter");
    // The dialog takes focus on its input; typing the name and Enter revokes.
    await page.getByRole("dialog").waitFor();
    await page.keyboard.type(name);
    await page.keyboard.press("Enter");
    await page.getByText(`Token ${name} revoked`).waitFor();
    assert.ok((await tokenByName(name))?.revokeTime, "revoked at the server");
  } finally {
    await context.close();
  }
});

test("a refused create shows the server's code and reason (a taken name: ALREADY_EXISTS TOKEN_NAME_TAKEN) and no secret", async () => {
  const { context, page } = await newPage(browser);
  try {
    const name = uniqueId("dup-tok");
    made.push(name);
    await api.admin.createApiToken({ name, role: v1.Role.VIEWER });
    await signIn(page);
    await go(page, "admin/tokens");
    await page.getByLabel("Name").fill(name);
    await page.getByRole("button", { name: "Create token" }).click();
    const alert = page.locator(".error-box");
    await alert.waitFor();
    assert.match(await alert.innerText(), /AlreadyExists[\s\S]*TOKEN_NAME_TAKEN/);
    assert.equal(await page.getByTestId("token-secret").count(), 0);
  } finally {
    await context.close();
  }
});

test("the audit log filters by token and time and pages back as ListAuditEvents does", async () => {
  const { context, page } = await newPage(browser);
  try {
    // The test makes its own history: a token of its own makes 60 audited calls (revoking
    // tokens that do not exist: refused, changing nothing, but every mutating call is audited).
    const tokenName = uniqueId("audit-src");
    made.push(tokenName);
    const source = await api.admin.createApiToken({ name: tokenName, role: v1.Role.ADMIN });
    const caller = apiAs(source.secret);
    for (let i = 0; i < 60; i++) {
      await caller.admin.revokeApiToken({ tokenId: `${tokenName}-missing-${i}` }).catch(() => undefined);
    }
    const byToken = `token_name = "${tokenName}"`;
    await eventually("the 60 calls in the audit log (written in batches)", async () => {
      const res = await api.admin.listAuditEvents({ pageSize: 1, filter: byToken });
      return res.totalSize >= 60;
    });
    // Up to the start of the next second, so the page and the API see the same events.
    await new Promise((r) => setTimeout(r, 1100));
    const until = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().slice(0, 19);
    const filter = `${byToken} AND time < "${until}.000Z"`;
    const first = await api.admin.listAuditEvents({ pageSize: 50, filter });
    assert.ok(first.nextPageToken, "more than one page of events");
    const second = await api.admin.listAuditEvents({ pageSize: 50, filter, pageToken: first.nextPageToken });
    await signIn(page);
    await go(page, "admin/audit");
    await page.getByLabel("Token name").fill(tokenName);
    await page.getByLabel("Until (UTC)").fill(until);
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.getByText(`Filter: ${filter}`).waitFor();
    const ids = (list: { events: { id: string }[] }) => list.events.map((e) => e.id);
    const shown = () => page.locator("tr[data-event]").evaluateAll((rs) => rs.map((r) => (r as HTMLElement).dataset.event));
    const settle = async (want: string[]) => {
      let got: (string | undefined)[] = [];
      for (let i = 0; i < 50 && JSON.stringify(got) !== JSON.stringify(want); i++) {
        await page.waitForTimeout(100);
        got = await shown();
      }
      assert.deepEqual(got, want);
    };
    await settle(ids(first));
    assert.match(await page.locator("caption").innerText(), new RegExp(`^${first.totalSize} events`));
    await page.getByRole("button", { name: "Older" }).click();
    await settle(ids(second));
    await page.getByRole("button", { name: "Newer" }).click();
    await settle(ids(first));
  } finally {
    await context.close();
  }
});

test("admin pages: accessible at both sizes", async () => {
  await checkPage(browser, "admin-tokens", async (page) => {
    await go(page, "admin/tokens");
    await page.locator("tr[data-token]").first().waitFor();
  });
  await checkPage(browser, "admin-token-secret", async (page) => {
    const name = uniqueId("a11y-tok");
    made.push(name);
    await go(page, "admin/tokens");
    await page.getByLabel("Name").fill(name);
    await page.getByRole("button", { name: "Create token" }).click();
    await page.getByTestId("token-secret").waitFor();
  });
  await checkPage(browser, "admin-audit", async (page) => {
    await go(page, "admin/audit");
    await page.locator("tr[data-event]").first().waitFor();
  });
});
