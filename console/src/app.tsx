// The console's shell: sign-in when there is no session, else the navigation and the page the
// route names.
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { href, useRoute, type Route } from "./router";
import { session, signOut } from "./session";
import { useSignal } from "./state";
import { SignIn } from "./pages/signin";
import { ClustersPage } from "./pages/clusters";
import { ClusterPage } from "./pages/cluster";
import { LogsPage } from "./pages/logs";
import { ApplyPage } from "./pages/apply";
import { OperationsPage } from "./pages/operations";
import { RegistriesPage } from "./pages/registries";
import { AdminPage } from "./pages/admin";

const NAV: { path: string; label: string }[] = [
  { path: "clusters", label: "Clusters" },
  { path: "apply", label: "Apply YAML" },
  { path: "logs", label: "Logs" },
  { path: "operations", label: "Operations" },
  { path: "registries", label: "Registries" },
  { path: "admin", label: "Admin" },
];

/** The page of a route. Pages read their own sub-routes from `route.segments`. */
function page(route: Route): ComponentChildren {
  const [first = "clusters", second] = route.segments;
  switch (first) {
    case "clusters":
      return second === undefined ? <ClustersPage route={route} /> : <ClusterPage route={route} />;
    case "logs":
      return <LogsPage route={route} />;
    case "apply":
      return <ApplyPage route={route} />;
    case "operations":
      return <OperationsPage route={route} />;
    case "registries":
      return <RegistriesPage route={route} />;
    case "admin":
      return <AdminPage route={route} />;
    default:
      return (
        <section>
          <h1>Not found</h1>
          <p>
            There is no page <code>{route.segments.join("/")}</code>. <a href={href("clusters")}>Go to clusters</a>.
          </p>
        </section>
      );
  }
}

export function App() {
  const s = useSignal(session);
  const route = useRoute();
  const main = useRef<HTMLElement>(null);
  const first = route.segments[0] ?? "clusters";
  // Move focus to the page on navigation, so keyboard and screen-reader users start there.
  useEffect(() => {
    main.current?.focus();
  }, [route.segments.join("/")]);
  if (!s) return <SignIn />;
  return (
    <div class="shell">
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), main.current?.focus())}>
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href={href("clusters")}>
          Flotilla
        </a>
        <nav aria-label="Main">
          <ul>
            {NAV.map((n) => (
              <li key={n.path}>
                <a href={href(n.path)} aria-current={first === n.path ? "page" : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <button type="button" class="signout" onClick={() => signOut()}>
          Sign out
        </button>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        {page(route)}
      </main>
    </div>
  );
}
