import starmesh


def test_the_documented_names_import_from_starmesh() -> None:
    from starmesh import (  # noqa: F401
        DataType,
        EngineType,
        Message,
        MessageBusError,
        MessagePriority,
        MessageType,
        create_marketdata_client,
        create_messagebus_client,
    )

    for name in starmesh.__all__:
        assert hasattr(starmesh, name), name
