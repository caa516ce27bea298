ALTER TABLE clusters DROP COLUMN kube_access;
