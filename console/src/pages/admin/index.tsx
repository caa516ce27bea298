// Admin: API tokens (#/admin, #/admin/tokens) and the audit log (#/admin/audit).
import { href, type Route } from "../../router";
import { AuditLog } from "./audit";
import { Tokens } from "./tokens";
import "./admin.css";

export function AdminPage({ route }: { route: Route }) {
  const tab = route.segments[1] === "audit" ? "audit" : "tokens";
  return (
    <section aria-labelledby="admin-title">
      <h1 id="admin-title">Admin</h1>
      <nav class="tabs" aria-label="Admin">
        <a href={href("admin", "tokens")} aria-current={tab === "tokens" ? "page" : undefined}>
          API tokens
        </a>
        <a href={href("admin", "audit")} aria-current={tab === "audit" ? "page" : undefined}>
          Audit log
        </a>
      </nav>
      {tab === "audit" ? <AuditLog route={route} /> : <Tokens />}
    </section>
  );
}
