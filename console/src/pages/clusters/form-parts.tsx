// What the import and create forms share: their head (with the way back to the list), the
// cluster's id / display name / labels fields, and Validate-then-act buttons.
import { href } from "../../router";
import { TextField } from "../../ui/form";

export function FormHead({ id, title }: { id: string; title: string }) {
  return (
    <div class="page-head">
      <h1 id={id}>{title}</h1>
      <div class="actions">
        <a class="button" href={href("clusters")}>
          Back to clusters
        </a>
      </div>
    </div>
  );
}

export interface NamingValues {
  clusterId: string;
  displayName: string;
  labels: string;
}

/** Cluster id, display name and labels, with the API's refusal of each (or the labels' parse error). */
export function NamingFields(props: {
  values: NamingValues;
  set: <K extends keyof NamingValues>(key: K) => (value: string) => void;
  idHint: string;
  errors: { clusterId: string | undefined; displayName: string | undefined; labels: string | undefined };
}) {
  const { values, set, errors } = props;
  return (
    <>
      <TextField
        label="Cluster id (optional)"
        name="cluster-id"
        value={values.clusterId}
        onInput={set("clusterId")}
        hint={props.idHint}
        error={errors.clusterId}
      />
      <TextField label="Display name" name="display-name" value={values.displayName} onInput={set("displayName")} error={errors.displayName} />
      <TextField
        label="Labels"
        name="labels"
        placeholder="env=prod, team=core"
        value={values.labels}
        onInput={set("labels")}
        error={errors.labels}
      />
    </>
  );
}

/**
 * Validate (validate_only: nothing changes), then `action` ("Import", "Create"), offered only for
 * the form as it passed validation.
 */
export function ValidateActions(props: {
  /** Which call runs: "" none, "validate", or the action's. */
  busy: string;
  upToDate: boolean;
  run: (validateOnly: boolean) => Promise<void>;
  action: string;
  /** The action's button while it runs ("Importing…"). */
  acting: string;
}) {
  const { busy, upToDate, run } = props;
  return (
    <>
      <div class="actions">
        <button type="button" disabled={busy !== ""} onClick={() => void run(true)}>
          {busy === "validate" ? "Validating…" : "Validate"}
        </button>
        <button type="button" class="primary" disabled={busy !== "" || !upToDate} onClick={() => void run(false)}>
          {busy !== "" && busy !== "validate" ? props.acting : props.action}
        </button>
      </div>
      {!upToDate ? <p class="muted">{`Validate first: ${props.action} is offered for what passed validation.`}</p> : null}
    </>
  );
}
