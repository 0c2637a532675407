from starmesh.bus.redis.raw import raw_streams


def test_stream_replies_read_the_same_in_resp2_and_resp3() -> None:
    entries = [[b"1-0", [b"m", b"data", b"other", b"x"]], [b"2-0", None]]
    expected = [("s", [(b"1-0", {b"m": b"data", b"other": b"x"}), (b"2-0", None)])]
    assert raw_streams({b"s": entries}) == expected
    assert raw_streams([[b"s", entries]]) == expected
    assert raw_streams(None) == []
