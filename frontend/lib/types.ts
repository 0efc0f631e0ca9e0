export interface Diagnosis {
  rule?: string;
  summary?: string;
  fix?: string;
  line?: string;
  [k: string]: unknown;
}

export interface Replica {
  replica_index: number;
  state: string;
  state_reason: string | null;
  runtime: string | null;
  port: number | null;
  pid: number | null;
  restart_count: number;
  last_exit_code: number | null;
  diagnosis: Diagnosis | null;
}

export interface ModelInfo {
  name: string;
  recipe: string;
  engine: string;
  served_name: string;
  desired_state: string;
  state: string;
  state_reason: string | null;
  state_changed_at: string;
  diagnosis: Diagnosis | null;
  runtime: string | null;
  replicas: Replica[];
  created_at: string;
}

export interface RecipeInfo {
  name: string;
  engine: string;
  served_name: string;
  source: string | null;
  created_at?: string;
  updated_at?: string;
  [k: string]: unknown;
}

export interface KeyInfo {
  id: number;
  name: string;
  prefix: string;
  scopes: string[];
  org_id: number;
  allowed_models: string[];
  allowed_ips: string[];
  rpm_limit: number | null;
  tpm_limit: number | null;
  max_concurrent: number | null;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  created_at: string;
}
