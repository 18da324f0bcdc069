"""`pdebench-generate pde=ks preset=small`: generate every split of one dataset, one shard of it, or merge shards."""

from __future__ import annotations

from omegaconf import DictConfig

from data_gen.generate import generate, resolve_shard_count
from pdebench.cli.common import hydra_app, to_container
from pdebench.config import GenerateConfig
from pdebench.data.manifest import generate_command


@hydra_app("generate", GenerateConfig)
def main(cfg: DictConfig) -> None:
    config = resolve_shard_count(to_container(cfg))
    out_dir = generate(config)
    if config.get("shard") is None:
        print(f"dataset written: {out_dir}")
    else:
        merge = generate_command(out_dir.parents[1], "merge=true")
        print(f"shard {config['shard']} of {config['n_shards']} written: {out_dir}; once every shard is done, "
              f"join them with {merge}")


if __name__ == "__main__":
    main()
