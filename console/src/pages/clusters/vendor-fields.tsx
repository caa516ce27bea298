// The per-provider part of the create form (ClusterSpec.ack / .tke / .rancher): which fields each
// provider takes, with the values the proto documents, and how they become the spec's oneof.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ClusterSpecSchema } from "@flotilla-dev/client/v1";
import type { ApiError } from "../../api";
import { Field } from "../../ui/form";
import { fieldUnder } from "./shared";

interface VendorField {
  key: string;
  label: string;
  /** Choices the proto names; "" (the provider's default) is always offered first. */
  options?: string[];
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
    fields: [{ key: "rancher_cluster_id", label: "Rancher cluster id", hint: "An existing Rancher cluster to bring in, such as c-abc12." }],
  },
};

export function vendorForm(provider: string): VendorForm {
  return VENDOR_FORMS[provider] ?? { region: true, fields: [] };
}

type ProviderConfig = MessageInitShape<typeof ClusterSpecSchema>["providerConfig"];

/** The spec's provider_config for `provider` from the form's values. */
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
      return { case: "rancher", value: { rancherClusterId: s("rancher_cluster_id") } };
    default:
      return { case: undefined };
  }
}

export function VendorFields(props: {
  provider: string;
  values: Record<string, string>;
  onChange: (key: string, value: string) => void;
  error: ApiError | null;
}) {
  const form = vendorForm(props.provider);
  return (
    <>
      {form.fields.map((f) => {
        const error = fieldUnder(props.error, `spec.${props.provider}.${f.key}`);
        const value = props.values[f.key] ?? "";
        return (
          <Field key={f.key} label={f.label} error={error} {...(f.hint ? { hint: f.hint } : {})}>
            {(id, describedBy) =>
              f.options ? (
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
