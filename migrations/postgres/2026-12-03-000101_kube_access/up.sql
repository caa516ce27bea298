-- How Flotilla acts on the cluster for a caller: 'builtin' (the stored credential, limited by
-- Flotilla's role rules) or 'impersonation' (Impersonate-User/-Group: the cluster's RBAC decides).
ALTER TABLE clusters ADD COLUMN kube_access TEXT NOT NULL DEFAULT 'builtin';
