"""Table 2's probes: MLPs on frozen features and contrastive embeddings (the study's section 4.2)."""
