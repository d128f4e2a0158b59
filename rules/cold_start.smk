# Beyond the study: cold-start recommendations for new videos (dataset.new_videos), without retraining.
#
# New videos (dataset.new_videos) run the catalog's own ingest and feature rules (rule inheritance) under
# results/new/. Their feature shards are one per video, named by video key, and depend only on that video's
# segment rows (rule new_video_segments has them as params, no input file): adding videos to the CSV
# re-ingests and re-segments the list, but extracts features of the added videos only.
from mvcl.beyond.recommend import KEY_PATTERN

# New videos get one centre crop per segment, as held-out (test) videos do; each is its own group (their CSV
# need not hold the group_by column).
NEW_VIDEOS_SPLIT = {"train": 0.0, "val": 0.0, "test": 1.0, "group_by": "video_id"}

# What a new video's feature job reads and writes in place of a catalog shard's: one video's segment rows, and
# its features beside their provenance record.
NEW_VIDEO_SEGMENTS = {"segments": "results/new/segments/{key}.parquet"}
NEW_VIDEO_FEATURES = {
    "features": "results/new/features/{encoder}/{key}.npy",
    "provenance": "results/new/features/{encoder}/{key}.json",
}


if PLAN.demo_makes_new_videos:

    rule demo_new_videos:
        input:
            metadata=config["dataset"]["metadata_csv"],
        output:
            metadata=PLAN.new_videos,
        log:
            log_path("demo_new_videos"),
        priority: 10
        conda:
            "../envs/mvcl.yaml"
        params:
            reencodes=PLAN.recommend["demo_reencodes"],
            seed=config["seed"],
        script:
            "../workflow_scripts/demo_new_videos.py"


# The new videos' ingest, segments and features run at the priority of the catalog's features (10,
# rules/features.smk; their feature rules inherit it): beside the catalog's shards, not after Table 1's inputs,
# where their chain of small jobs would end the run. Their embedding and ranking (recommend) wait for training.
if PLAN.new_videos:

    use rule ingest as ingest_new with:
        input:
            metadata=PLAN.new_videos,
        output:
            manifest="results/new/data/manifest.parquet",
            rejected="results/new/data/rejected.csv",
        log:
            log_path("ingest_new"),
        priority: 10
        params:
            split=NEW_VIDEOS_SPLIT,

    # A checkpoint (which new videos were accepted decides the per-video jobs); the segments rule's script.
    checkpoint segments_new:
        input:
            manifest="results/new/data/manifest.parquet",
        output:
            segments="results/new/data/segments.parquet",
        log:
            log_path("segments_new"),
        priority: 10
        conda:
            "../envs/mvcl.yaml"
        params:
            segments=config["segments"],
            shard_videos=1,
            seed=config["seed"],
        script:
            "../workflow_scripts/segments.py"

    rule new_video_segments:
        output:
            segments="results/new/segments/{key}.parquet",
        log:
            log_path("new_video_segments", "{key}"),
        wildcard_constraints:
            key=KEY_PATTERN,
        priority: 10
        conda:
            "../envs/mvcl.yaml"
        params:
            rows=new_video_rows,
        script:
            "../workflow_scripts/new_video_segments.py"

    use rule audio_features as audio_features_new with:
        input:
            **NEW_VIDEO_SEGMENTS,
        output:
            **NEW_VIDEO_FEATURES,
        log:
            log_path("audio_features_new", "{encoder}", "{key}"),
        params:
            shard=0,

    use rule video_features as video_features_new with:
        input:
            **NEW_VIDEO_SEGMENTS,
            # an int8 R(2+1)D (features.precision) calibrates on the catalog's clips, as the catalog's shards do
            calibration="results/data/segments.parquet",
        output:
            **NEW_VIDEO_FEATURES,
        log:
            log_path("video_features_new", "{encoder}", "{key}"),
        # beside the other new-video jobs, after the catalog's R(2+1)D shards (rules/features.smk)
        priority: 10
        params:
            shard=0,

    use rule encoder_features as encoder_features_new with:
        input:
            **NEW_VIDEO_SEGMENTS,
        output:
            **NEW_VIDEO_FEATURES,
        log:
            log_path("encoder_features_new", "{encoder}", "{key}"),
        params:
            shard=0,

    # The new videos' embeddings by the catalog's trained heads (no training), then each new video's top-k
    # catalog videos: one job per configuration, one torch start-up.
    rule recommend:
        input:
            heads=replicate_path("{configuration}", "heads.pt"),
            segments=new_files("segments", ".parquet"),
            audio=new_features("audio"),
            video=new_features("video"),
            catalog="results/embeddings/{configuration}.parquet",
            manifest="results/data/manifest.parquet",
            new_manifest="results/new/data/manifest.parquet",
        output:
            videos="results/new/embeddings/{configuration}.parquet",
            segments="results/new/embeddings/{configuration}_segments.parquet",
            table="results/recommendations/{configuration}.csv",
        log:
            log_path("recommend", "{configuration}"),
        wildcard_constraints:
            configuration="|".join(PLAN.trained),
        conda:
            "../envs/mvcl.yaml"
        threads: 1
        params:
            k=PLAN.recommend["k"],
            device=config["device"],
        script:
            "../workflow_scripts/recommend.py"

    rule recommendations_html:
        input:
            table=f"results/recommendations/{PLAN.recommend['configuration']}.csv",
        output:
            page="results/recommendations.html",
        log:
            log_path("recommendations_html"),
        conda:
            "../envs/mvcl.yaml"
        params:
            configuration=PLAN.recommend["configuration"],
        script:
            "../workflow_scripts/recommendations_html.py"
