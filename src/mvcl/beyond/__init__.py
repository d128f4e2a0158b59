"""Beyond the study: every video's embeddings, cold-start recommendations, RQ2 with people, the ablation."""
