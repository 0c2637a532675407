from starmesh.core.ids import message_id, node_id


def test_ids_are_fixed_width_hex_and_unique() -> None:
    ids = [message_id(1_795_000_000_000_000_000) for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert all(node_id() in i for i in ids)


def test_ids_sort_by_timestamp() -> None:
    stamps = [1_795_000_000_000_000_000 + delta for delta in (5, 1, 3_000_000_000, 2, 0)]
    ids = {message_id(ts): ts for ts in stamps}
    assert [ids[i] for i in sorted(ids)] == sorted(stamps)
