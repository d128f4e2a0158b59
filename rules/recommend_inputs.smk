# Input functions of rules/recommend.smk: the accepted new videos, known once checkpoint segments_new has run.
from mvcl.evaluate.recommend import video_key


def new_video_keys(wildcards):
    table = pd.read_parquet(
        checkpoints.segments_new.get().output.segments, columns=["video_id"]
    )
    return [video_key(video_id) for video_id in table["video_id"].unique()]


def new_video_rows(wildcards):
    """The segment rows of one new video: a change of them (and only that) redoes its features."""
    table = pd.read_parquet(checkpoints.segments_new.get().output.segments)
    rows = table[table["video_id"].map(video_key) == wildcards.key]
    return rows.drop(columns="shard").to_dict("records")


def new_files(*parts):
    def files(wildcards):
        return [
            res("new", *parts[:-1], f"{key}{parts[-1]}")
            for key in new_video_keys(wildcards)
        ]

    return files
