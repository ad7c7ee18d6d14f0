import numpy as np

from adasplit_env.data import SyntheticConfig, generate_synthetic, load_dataset


def test_generator_is_seeded():
    a = generate_synthetic(SyntheticConfig(num_users=50, seed=3))
    b = generate_synthetic(SyntheticConfig(num_users=50, seed=3))
    c = generate_synthetic(SyntheticConfig(num_users=50, seed=4))
    assert a.interactions.items.tolist() == b.interactions.items.tolist()
    assert a.interactions.items.tolist() != c.interactions.items.tolist()


def test_users_mix_their_own_interests_and_vary_in_number():
    cfg = SyntheticConfig(num_users=300, seed=0)
    data = generate_synthetic(cfg)
    inter = data.interactions
    counts = {len(v) for v in data.user_interests.values()}
    assert counts == set(range(cfg.min_interests, cfg.max_interests + 1))
    switched = 0
    for user, interests in data.user_interests.items():
        groups = [data.item_group[i] for i in inter.items[inter.users == user]]
        assert set(groups) <= set(interests)
        switched += len(interests) > 1 and len(set(groups)) > 1
    assert switched > 150


def test_next_item_follows_last_item_of_its_group_not_of_history():
    cfg = SyntheticConfig(num_users=400, seed=1)
    data = generate_synthetic(cfg)
    inter = data.interactions
    n_per = cfg.items_per_group

    def index(item):
        return int(item.split("i")[-1])

    by_group = by_last = total = 0
    for user in data.user_interests:
        items = inter.items[inter.users == user].tolist()
        last_in_group = {}
        for prev, item in zip(items, items[1:] + [None]):
            g = data.item_group[prev]
            last_in_group[g] = prev
            if item is None:
                break
            target_group = data.item_group[item]
            if target_group in last_in_group:
                total += 1
                by_group += index(item) == (index(last_in_group[target_group]) + 1) % n_per
                by_last += (
                    data.item_group[prev] == target_group
                    and index(item) == (index(prev) + 1) % n_per
                )
    # the right group's last item predicts almost always; the history's last item far less
    assert by_group / total > 0.9
    assert by_last / total < 0.8


def test_dataset_carries_planted_groups_for_dense_ids():
    ds = load_dataset("synthetic")
    assert ds.item_groups is not None and ds.item_groups[0] == -1
    assert ds.item_groups.shape == (ds.num_items + 1,)
    raw = ds.sequences.item_raw_ids
    for dense in (1, 17, ds.num_items):
        assert ds.item_groups[dense] == int(raw[dense].split("i")[0][1:])
    assert len(np.unique(ds.item_groups[1:])) == SyntheticConfig().num_groups


def test_a_spec_changes_the_generators_fields():
    import pytest

    from adasplit_env.errors import DataError

    spec = "synthetic:num_users=80,noise=1.0,seed=3"
    ds = load_dataset(spec)
    direct = load_dataset("synthetic", synthetic=SyntheticConfig(num_users=80, noise=1.0, seed=3))
    assert ds.name == spec and ds.num_users == 80
    assert all(map(np.array_equal, ds.sequences.sequences, direct.sequences.sequences))
    assert not np.array_equal(
        ds.sequences.sequences[1], load_dataset("synthetic").sequences.sequences[1]
    )
    assert ds.item_groups is not None
    assert load_dataset("synthetic:").name == "synthetic:"  # no field changed: the default
    for bad, message in [
        ("synthetic:noise", "field=value"),
        ("synthetic:colour=3", "field=value"),
        ("synthetic:num_users=many", "num_users must be a int"),
        ("synthetic:noise=2", "must lie in [0, 1]"),
    ]:
        with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_dataset(bad)


def test_noise_one_shuffles_an_interests_items_but_keeps_the_interests():
    """noise 1.0: every step takes any item of the current interest, so the interest's
    last item no longer predicts the next one; users keep their own interests."""
    data = generate_synthetic(SyntheticConfig(num_users=300, noise=1.0, seed=1))
    inter = data.interactions
    successor = total = 0
    for user, interests in data.user_interests.items():
        items = inter.items[inter.users == user].tolist()
        assert {data.item_group[i] for i in items} <= set(interests)
        for prev, item in zip(items, items[1:]):
            if data.item_group[prev] == data.item_group[item]:
                total += 1
                successor += int(item.split("i")[-1]) == (int(prev.split("i")[-1]) + 1) % 30
    assert successor / total < 0.1


def test_a_spec_and_a_config_for_the_generator_do_not_mix():
    import pytest

    from adasplit_env.errors import DataError

    with pytest.raises(DataError, match="by the spec or by config"):
        load_dataset("synthetic:noise=1.0", synthetic=SyntheticConfig(num_users=50))
    assert load_dataset("synthetic", synthetic=SyntheticConfig(num_users=50)).raw_stats.users == 50
