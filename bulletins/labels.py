"""Chinese names and number formats of what a bulletin shows (indicators, units, operators, regions)."""

from __future__ import annotations

from reference.operators import BUILTIN_OPERATORS
from reference.regions import REGIONS

INDICATOR_ZH: dict[str, str] = {
    "bs5g_total": "5G基站数",
    "bs5g_new": "新增5G基站数",
    "users_5g": "5G终端用户数",
    "users_5g_new": "新增5G终端用户数",
    "gigabit_users": "千兆宽带用户数",
    "iot_terminals_mobile": "移动物联网终端数",
    "iot_connections_pan": "泛物联网连接数",
    "ipv6_share_mobile": "移动网络IPv6流量占比",
    "ipv6_share_fixed": "固定网络IPv6流量占比",
    "dc_pue": "数据中心电能利用效率(PUE)",
    "gigabit_cities": "千兆城市数",
    "iot_per_capita": "人均泛物联网连接数",
    "bs5g_efficiency": "5G基站能效",
    "population": "常住人口",
    "traffic_mobile_gb": "移动网络流量",
    "traffic_fixed_gb": "固定网络流量",
    "ipv6_traffic_mobile_gb": "移动网络IPv6流量",
    "ipv6_traffic_fixed_gb": "固定网络IPv6流量",
    "dc_energy_total_kwh": "数据中心总耗电量",
    "dc_energy_it_kwh": "数据中心IT设备耗电量",
    "bs5g_energy_kwh": "5G基站耗电量",
    "gigabit_city": "千兆城市认定",
}

UNIT_ZH: dict[str, str] = {
    "count": "个",
    "persons": "人",
    "%": "%",
    "ratio": "",
    "GB/kWh": "GB/千瓦时",
    "GB": "GB",
    "kWh": "千瓦时",
    "0/1": "",
}


def indicator_zh(indicator_id: str) -> str:
    return INDICATOR_ZH.get(indicator_id, indicator_id)


def region_zh(code: int) -> str:
    r = REGIONS.get(code)
    return r.name_zh if r else str(code)


def operator_zh(op: str) -> str:
    names = BUILTIN_OPERATORS.get(op)
    return names[1] if names else op


def title_zh(title: str, fallback: str) -> str:
    """The Chinese part of a target title ("新建5G基站 1.4万个 (new 5G …)" → "新建5G基站 1.4万个")."""
    head = title.split(" (")[0].strip()
    return head or fallback


def fmt(value: float | None, unit: str = "") -> str:
    """A figure as a bulletin prints it: 万 for large counts, two decimals for shares, — for none."""
    if value is None:
        return "—"
    if unit == "%":
        return f"{value:.2f}%"
    if unit in ("ratio", "GB/kWh"):
        return f"{value:.3f}"
    if abs(value) >= 100_000:
        return f"{value / 10_000:,.2f}万"
    if abs(value) >= 1000 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.4g}"


def fmt_share(share: float | None) -> str:
    return "—" if share is None else f"{share:.1%}"
