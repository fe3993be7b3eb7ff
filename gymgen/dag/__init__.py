"""GFlowNet DAG environments: forward/backward actions with masks and exact ground truth where small."""
