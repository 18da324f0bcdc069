"""`pdebench-generate pde=ks preset=small`: generate every split of one dataset, one shard of it, or merge shards."""

from __future__ import annotations

from pdebench.cli.common import hydra_app, lazy_loader
from pdebench.config import GenerateConfig


@hydra_app("generate", lazy_loader("data_gen.config", "generate_config"), zoo_groups=("pde",))
def main(cfg: GenerateConfig) -> None:
    from data_gen.generate import generate, resolve_shard_count
    from pdebench.data.manifest import generate_command

    config = resolve_shard_count(cfg)
    out_dir = generate(config)
    if config.shard is None:
        print(f"dataset written: {out_dir}")
    else:
        merge = generate_command(out_dir.parents[1], "merge=true")
        print(f"shard {config.shard} of {config.n_shards} written: {out_dir}; once every shard is done, "
              f"join them with {merge}")


if __name__ == "__main__":
    main()
