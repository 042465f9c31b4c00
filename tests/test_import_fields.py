"""Header mapping: English and Chinese names, column maps, attributes and ignored columns."""

from __future__ import annotations

import pytest

from tierwise.data.ingest import detect_mapping
from tierwise.errors import InputError


def test_chinese_customer_headers_map_to_canonical_fields() -> None:
    headers = ["客户编号", "客户名称", "联系电话", "所属行业", "地区", "企业规模", "客户经理"]
    headers.append("合作开始日期")
    assert detect_mapping(headers, "customers") == {
        "客户编号": "customer_id",
        "客户名称": "name",
        "联系电话": "contact",
        "所属行业": "industry",
        "地区": "region",
        "企业规模": "size",
        "客户经理": "owner",
        "合作开始日期": "since",
    }


def test_english_headers_match_regardless_of_case_spaces_and_underscores() -> None:
    mapping = detect_mapping(["Order ID", "CUSTOMER_ID", " order date ", "Amount"], "orders")
    assert mapping == {
        "Order ID": "order_id",
        "CUSTOMER_ID": "customer_id",
        " order date ": "order_date",
        "Amount": "amount",
    }


def test_a_unit_in_brackets_does_not_stop_a_header_matching() -> None:
    mapping = detect_mapping(["单号", "客户ID", "日期", "金额（元）", "成本(元)"], "orders")
    assert mapping["金额（元）"] == "amount"
    assert mapping["成本(元)"] == "cost"


def test_interaction_headers_map_from_chinese() -> None:
    mapping = detect_mapping(["客户编号", "拜访日期", "方式", "评分", "备注"], "interactions")
    assert list(mapping.values()) == ["customer_id", "date", "type", "satisfaction", "note"]


def test_unmapped_customer_columns_become_attributes_named_as_the_header() -> None:
    mapping = detect_mapping(["客户编号", "员工人数", "VIP"], "customers")
    assert mapping["员工人数"] == "attribute:员工人数"
    assert mapping["VIP"] == "attribute:VIP"


def test_unmapped_order_and_interaction_columns_are_ignored() -> None:
    assert detect_mapping(["订单号", "备注"], "orders")["备注"] == "ignored"
    assert detect_mapping(["客户编号", "电话号码"], "interactions")["电话号码"] == "ignored"


def test_when_two_columns_match_one_field_the_preferred_name_wins() -> None:
    # 省份 is listed before 城市 for region; the city stays as an attribute.
    mapping = detect_mapping(["客户编号", "城市", "省份"], "customers")
    assert mapping == {"客户编号": "customer_id", "城市": "attribute:城市", "省份": "region"}


def test_an_attribute_may_not_take_the_name_of_a_table_column() -> None:
    mapping = detect_mapping(["客户编号", "placeholder"], "customers")
    assert mapping["placeholder"] == "attribute:placeholder_attr"


def test_column_map_overrides_automatic_matching() -> None:
    mapping = detect_mapping(
        ["单号", "买家", "日期", "金额", "编号"],
        "orders",
        {"买家": "customer_id", "编号": "ignored", "金额": "cost"},
    )
    assert mapping == {
        "单号": "order_id",
        "买家": "customer_id",
        "日期": "order_date",
        "金额": "cost",
        "编号": "ignored",
    }


def test_column_map_can_name_an_attribute_for_customers() -> None:
    mapping = detect_mapping(["编号", "等级"], "customers", {"等级": "attribute:旧等级"})
    assert mapping["等级"] == "attribute:旧等级"


def test_column_map_naming_a_column_not_in_the_file_is_an_error() -> None:
    with pytest.raises(InputError, match=r"'买家'.*not in the file"):
        detect_mapping(["单号", "客户编号"], "orders", {"买家": "customer_id"})


def test_column_map_naming_an_unknown_field_is_an_error() -> None:
    with pytest.raises(InputError, match="'buyer' is not a field of orders"):
        detect_mapping(["单号", "买家"], "orders", {"买家": "buyer"})


def test_an_attribute_may_not_take_the_name_of_an_import_work_column() -> None:
    mapping = detect_mapping(["客户编号", "__row"], "customers")
    assert mapping["__row"] == "attribute:__row_attr"
