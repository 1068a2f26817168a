"""Chinese names and number formats of what a bulletin shows (metrics, indicators, units, operators, regions).

Every metric and indicator of reference.catalogue has a name here (tests/test_bulletins_reconciliation.py
checks it), so a new one cannot appear in a bulletin as a bare identifier."""

from __future__ import annotations

from reference.catalogue import INDICATORS
from reference.operators import ADMIN_OPERATOR, ALL_OPERATOR, BUILTIN_OPERATORS
from reference.regions import REGIONS

INDICATOR_ZH: dict[str, str] = {
    # pushed metrics
    "bs5g_total": "5G基站数",
    "bs5g_built_total": "已建成5G基站数",
    "bs5g_built_ytd": "本年累计新建5G基站数",
    "bs4g_total": "4G基站数",
    "bs_mobile_total": "移动通信基站总数",
    "users_5g": "5G终端用户数",
    "gigabit_users": "千兆宽带用户数",
    "broadband_users": "固定宽带用户数",
    "ports_broadband": "宽带接入端口数",
    "ports_ftth": "FTTH/O端口数",
    "ports_10gpon": "10G-PON端口数",
    "fibre_km": "光缆线路长度",
    "egress_bandwidth_gbps": "出省带宽",
    "ipv6_active_users": "IPv6活跃用户数",
    "iot_terminals_mobile": "移动物联网终端数",
    "iot_connections_pan": "泛物联网连接数",
    "traffic_mobile_gb": "移动网络流量",
    "ipv6_traffic_mobile_gb": "移动网络IPv6流量",
    "traffic_fixed_gb": "固定网络流量",
    "ipv6_traffic_fixed_gb": "固定网络IPv6流量",
    "dc_energy_total_kwh": "数据中心总耗电量",
    "dc_energy_it_kwh": "数据中心IT设备耗电量",
    "dc_racks": "数据中心标准机架数",
    "dc_compute_pflops": "算力规模",
    "dc_count": "在用数据中心数",
    "bs5g_energy_kwh": "5G基站耗电量",
    "townships": "乡镇数",
    "townships_5g": "通5G乡镇数",
    "villages": "行政村数",
    "villages_5g": "通5G行政村数",
    "iir_resolutions_total": "标识累计解析量",
    "enterprises_cloud_ytd": "本年累计上云企业数",
    "programme_count": "专项工作完成数",
    "milestone": "里程碑事项完成情况",
    "gigabit_city": "千兆城市认定",
    "population": "常住人口",
    # derived indicators
    "bs5g_new": "新增5G基站数",
    "bs5g_net_new": "5G基站净增数",
    "bs5g_built": "建成5G基站数",
    "iir_resolutions": "工业互联网标识解析量",
    "users_5g_new": "新增5G终端用户数",
    "enterprises_cloud_new": "新增上云企业数",
    "ipv6_share_mobile": "移动网络IPv6流量占比",
    "ipv6_share_fixed": "固定网络IPv6流量占比",
    "dc_pue": "数据中心电能利用效率（PUE）",
    "gigabit_cities": "千兆城市数",
    "iot_per_capita": "人均泛物联网连接数",
    "bs5g_per_10k": "每万人5G基站数",
    "township_5g_coverage": "乡镇5G覆盖率",
    "village_5g_coverage": "行政村5G覆盖率",
    "bs5g_efficiency": "5G基站能效",
}

#: Every unit of the catalogue; "" where the figure is a pure number (ratios, 0/1 flags).
UNIT_ZH: dict[str, str] = {
    "count": "个",
    "persons": "人",
    "%": "%",
    "ratio": "",
    "GB/kWh": "GB/千瓦时",
    "GB": "GB",
    "kWh": "千瓦时",
    "0/1": "",
    "km": "公里",
    "Gbps": "Gbps",
    "PFLOPS": "PFLOPS",
    "per 10k": "个/万人",
}

#: Counts whose Chinese measure word is not 个.
COUNT_UNIT_ZH: dict[str, str] = {
    "users_5g": "户",
    "users_5g_new": "户",
    "gigabit_users": "户",
    "broadband_users": "户",
    "ipv6_active_users": "户",
    "enterprises_cloud_ytd": "家",
    "enterprises_cloud_new": "家",
    "dc_racks": "架",
    "iir_resolutions_total": "次",
    "iir_resolutions": "次",
    "programme_count": "项",
}

_OPERATOR_ZH = {ALL_OPERATOR: "全行业", ADMIN_OPERATOR: "管理部门"}


def indicator_zh(indicator_id: str) -> str:
    """The Chinese name of a metric or indicator (its id only for one the catalogue does not know)."""
    return INDICATOR_ZH.get(indicator_id, indicator_id)


def unit_zh(indicator_id: str) -> str:
    """The Chinese unit of a metric or indicator ("" for pure numbers)."""
    if indicator_id in COUNT_UNIT_ZH:
        return COUNT_UNIT_ZH[indicator_id]
    ind = INDICATORS.get(indicator_id)
    if ind is None:
        return ""
    return UNIT_ZH.get(ind.unit, ind.unit)


def region_zh(code: int) -> str:
    r = REGIONS.get(code)
    return r.name_zh if r else str(code)


def operator_zh(op: str) -> str:
    names = BUILTIN_OPERATORS.get(op)
    return names[1] if names else _OPERATOR_ZH.get(op, op)


def title_zh(title: str, fallback: str) -> str:
    """The Chinese part of a target title ("新建5G基站 1.4万个 (new 5G …)" → "新建5G基站 1.4万个")."""
    head = title.split(" (")[0].strip()
    return head or fallback


def quotes_zh(text: str) -> str:
    """ASCII double quotes and parentheses as Chinese ones: 打造30个"5G+文化旅游" → 打造30个“5G+文化旅游”."""
    out, opening = [], True
    for ch in text:
        if ch == '"':
            out.append("“" if opening else "”")
            opening = not opening
        else:
            out.append({"(": "（", ")": "）"}.get(ch, ch))
    return "".join(out)


def source_zh(source: str) -> str:
    """A target's source as a Chinese document cites it: "方案 赣数办〔2023〕1号, 二、(二) 7 (附件 第29项)"
    → "《方案》（赣数办〔2023〕1号）二、（二）7（附件第29项）"."""
    doc, _, where = source.partition(", ")
    doc = doc.strip()
    if not doc:
        return "—"
    title, _, number = doc.rpartition(" ")
    if not title or "号" not in number:
        title, number = doc, ""
    cited = f"《{title.strip()}》" + (f"（{number}）" if number else "")
    return quotes_zh(cited + where.replace(" ", ""))


def fmt(value: float | None, unit: str = "") -> str:
    """A figure as a bulletin prints it: 万 / 亿 for large counts, two decimals for shares, — for none."""
    if value is None:
        return "—"
    if unit == "%":
        return f"{value:.2f}%"
    if unit in ("ratio", "GB/kWh"):
        return f"{value:.3f}"
    if unit == "per 10k":
        return f"{value:.2f}"
    if abs(value) >= 100_000_000:
        return f"{value / 100_000_000:,.2f}亿"
    if abs(value) >= 100_000:
        return f"{value / 10_000:,.2f}万"
    if abs(value) >= 1000 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.4g}"


def fmt_share(share: float | None) -> str:
    return "—" if share is None else f"{share:.1%}"
