// The per-provider part of the create form (ClusterSpec.ack / .tke / .rancher): which fields each
// provider takes, with the values the proto documents, and how they become the spec's oneof.
import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import type { ClusterSpecSchema } from "@flotilla-dev/client/v1";
import type { ApiError } from "../../api";
import { Field } from "../../ui/form";
import { fieldUnder } from "./shared";

interface VendorField {
  key: string;
  label: string;
  /** Choices the proto names; "" (the provider's default) is always offered first. */
  options?: string[];
  /** A JSON object (google.protobuf.Struct), typed into a text area. */
  json?: boolean;
  hint?: string;
}

interface VendorForm {
  /** Whether ClusterSpec.region applies (Rancher has none). */
  region: boolean;
  regionHint?: string;
  fields: VendorField[];
}

export const VENDOR_FORMS: Record<string, VendorForm> = {
  ack: {
    region: true,
    regionHint: "Such as cn-hangzhou.",
    fields: [
      { key: "cluster_type", label: "Cluster type", options: ["ManagedKubernetes", "Kubernetes", "ExternalKubernetes"] },
      { key: "cluster_spec", label: "Cluster spec", options: ["ack.pro.small", "ack.standard"] },
      { key: "resource_group_id", label: "Resource group id (optional)" },
    ],
  },
  tke: {
    region: true,
    regionHint: "Such as ap-guangzhou.",
    fields: [
      { key: "cluster_type", label: "Cluster type", options: ["MANAGED_CLUSTER", "INDEPENDENT_CLUSTER"] },
      { key: "cluster_level", label: "Cluster level (optional)", hint: "Such as L5 or L20." },
      { key: "network_type", label: "Network type", options: ["GR", "VPC-CNI"] },
      { key: "project_id", label: "Project id (optional)" },
    ],
  },
  rancher: {
    region: false,
    // A create makes a new Rancher cluster from its driver config (rancher_cluster_id is for
    // bringing in an existing one, which a create refuses).
    fields: [
      {
        key: "driver_config",
        label: "Driver config (JSON)",
        json: true,
        hint: 'Passed to Rancher unchanged, such as {"rke2Config": {}}; the Kubernetes version goes into its kubernetesVersion.',
      },
    ],
  },
};

export function vendorForm(provider: string): VendorForm {
  return VENDOR_FORMS[provider] ?? { region: true, fields: [] };
}

type ProviderConfig = MessageInitShape<typeof ClusterSpecSchema>["providerConfig"];

/** A JSON field's text as an object, or why it is not one (shown at the field). */
export function parseJsonObject(text: string): { value?: JsonObject; error?: string } {
  if (text.trim() === "") return {};
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) return { error: "must be a JSON object ({...})" };
    return { value: v as JsonObject };
  } catch (e) {
    return { error: `is not JSON: ${(e as Error).message}` };
  }
}

/** Errors of the form's JSON fields, by key. */
export function vendorJsonErrors(provider: string, v: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of vendorForm(provider).fields) {
    const err = f.json ? parseJsonObject(v[f.key] ?? "").error : undefined;
    if (err) out[f.key] = err;
  }
  return out;
}

/** The spec's provider_config for `provider` from the form's values (JSON fields already checked). */
export function providerConfig(provider: string, v: Record<string, string>): ProviderConfig {
  const s = (k: string) => (v[k] ?? "").trim();
  switch (provider) {
    case "ack":
      return { case: "ack", value: { clusterType: s("cluster_type"), clusterSpec: s("cluster_spec"), resourceGroupId: s("resource_group_id") } };
    case "tke":
      return {
        case: "tke",
        value: { clusterType: s("cluster_type"), clusterLevel: s("cluster_level"), networkType: s("network_type"), projectId: s("project_id") },
      };
    case "rancher":
      return { case: "rancher", value: { driverConfig: parseJsonObject(v.driver_config ?? "").value } };
    default:
      return { case: undefined };
  }
}

export function VendorFields(props: {
  provider: string;
  values: Record<string, string>;
  onChange: (key: string, value: string) => void;
  error: ApiError | null;
  /** The form's own complaints (JSON that does not parse), by key. */
  localErrors?: Record<string, string>;
}) {
  const form = vendorForm(props.provider);
  return (
    <>
      {form.fields.map((f) => {
        const error = props.localErrors?.[f.key] ?? fieldUnder(props.error, `spec.${props.provider}.${f.key}`);
        const value = props.values[f.key] ?? "";
        return (
          <Field key={f.key} label={f.label} error={error} {...(f.hint ? { hint: f.hint } : {})}>
            {(id, describedBy) =>
              f.json ? (
                <textarea
                  id={id}
                  name={f.key}
                  rows={6}
                  spellcheck={false}
                  aria-describedby={describedBy}
                  aria-invalid={error ? true : undefined}
                  value={value}
                  onInput={(e) => props.onChange(f.key, e.currentTarget.value)}
                />
              ) : f.options ? (
                <select
                  id={id}
                  name={f.key}
                  aria-describedby={describedBy}
                  aria-invalid={error ? true : undefined}
                  value={value}
                  onChange={(e) => props.onChange(f.key, e.currentTarget.value)}
                >
                  <option value="">Provider default</option>
                  {f.options.map((o) => (
                    <option key={o} value={o}>
                      {o}
                    </option>
                  ))}
                </select>
              ) : (
                <input
                  id={id}
                  name={f.key}
                  aria-describedby={describedBy}
                  aria-invalid={error ? true : undefined}
                  autoComplete="off"
                  value={value}
                  onInput={(e) => props.onChange(f.key, e.currentTarget.value)}
                />
              )
            }
          </Field>
        );
      })}
    </>
  );
}
