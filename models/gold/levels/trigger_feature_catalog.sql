{%- set level_columns = level_feature_columns() -%}
{%- set market_columns = market_feature_columns() -%}
{%- set blocks = feature_blocks() -%}
-- What each position of a level's trigger vector holds (1-based, as DuckDB lists index):
-- the level's own features, prefixed with the level (`pm_high_ask_pull_add_log_rest`), then
-- the market-wide ones without prefix; each as the blocks w0, d1-d3, w3/w9/w24 mean and delta.
with levels as (
    select level_id
    from {{ ref('session_level_definitions') }}
),

features (position, scope, feature, family, feature_description) as (
    values
    {%- for column, description in level_columns + market_columns %}
    {%- set scope = "level" if loop.index <= level_columns | length else "market" %}
    (
        {{ loop.index }},
        '{{ scope }}',
        '{{ column }}',
        '{{ feature_family(scope, column) }}',
        '{{ description | replace("'", "''") }}'
    ){{ "," if not loop.last }}
    {%- endfor %}
),

blocks (block_position, block, block_description) as (
    values
    {%- for block, description in blocks %}
    ({{ loop.index }}, '{{ block }}', '{{ description }}'){{ "," if not loop.last }}
    {%- endfor %}
),

named as (
    select
        levels.level_id,
        features.position,
        blocks.block_position,
        features.scope as feature_scope,
        features.family as feature_family,
        blocks.block,
        case features.scope
            when 'level' then lower(levels.level_id) || '_' || features.feature
            else features.feature
        end as base_feature,
        features.feature_description || '; ' || blocks.block || ': ' || blocks.block_description
            as description
    from levels
    cross join features
    cross join blocks
),

final as (
    select
        level_id,
        cast((position - 1) * {{ blocks | length }} + block_position as integer) as feature_index,
        base_feature || '_' || block as feature_name,
        block,
        base_feature,
        feature_scope,
        feature_family,
        description
    from named
)

select
    level_id,
    feature_index,
    feature_name,
    block,
    base_feature,
    feature_scope,
    feature_family,
    description
from final
