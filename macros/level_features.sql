{% macro level_side_features() -%}
    {#- The per-side features of a level's zone, in vector order, with what each is.
        Columns of level_features are `ask_<name>` and `bid_<name>`. -#}
    {{- return([
        ('com_displacement_log', 'ln((d_end + 1) / (d_start + 1)), d the depth-weighted mean distance in ticks from the level of the side\'s zone depth'),
        ('inner_slope_log', 'ln((near + 1) / (at + 1)) of zone depth at the window end'),
        ('convex_slope_log', 'ln((far + 1) / (near + 1)) of zone depth at the window end'),
        ('at_share_change', 'at depth / (zone depth + 1), end minus start'),
        ('near_share_change', 'near depth / (zone depth + 1), end minus start'),
        ('reprice_away_share', 'repriced away / (away + toward + 1); 0.5 when nothing was repriced'),
        ('pull_add_log_rest', 'ln((pulls of resting orders + 1) / (adds + 1))'),
        ('pull_intensity_rest_log1p', 'ln(1 + pulls of resting orders / (zone depth at start + 1))'),
        ('at_pull_share', 'pulls in the at band / (zone pulls + 1)'),
        ('near_pull_share', 'pulls in the near band / (zone pulls + 1)'),
        ('add_intensity', 'adds / (zone depth at start + 1)'),
        ('fill_intensity', 'fills / (zone depth at start + 1)'),
    ]) -}}
{%- endmacro %}


{% macro level_own_features() -%}
    {#- The features of a level that belong to no side, in vector order. -#}
    {{- return([
        ('distance_ticks', '(spot - level) / tick at the window end: negative below the level'),
        ('approach_velocity', 'ticks per second by which spot closed in on the level over the window'),
        ('gex_abs_share_in_zone', 'absolute gamma exposure at strikes within the zone / (absolute gamma exposure on the strike grid + 1e-6), over the strikes whose exposure is known; NULL when no options were priced that second or a strike in the zone has unknown exposure'),
        ('gex_imbalance_in_zone', 'net / (absolute + 1e-6) gamma exposure at strikes within the zone; NULL as gex_abs_share_in_zone'),
    ]) -}}
{%- endmacro %}


{% macro feature_family(scope, column) -%}
    {#- What a base feature measures, for reading models by family: level_book_physics (a side of
        the level's zone), level_geometry (where spot is and how fast it comes), gamma_exposure
        (options at the zone's strikes) or market_wide. -#}
    {%- set own = {
        'distance_ticks': 'level_geometry',
        'approach_velocity': 'level_geometry',
        'gex_abs_share_in_zone': 'gamma_exposure',
        'gex_imbalance_in_zone': 'gamma_exposure',
    } -%}
    {%- if scope == 'market' -%}
        {{- return('market_wide') -}}
    {%- elif column.startswith('ask_') or column.startswith('bid_') -%}
        {{- return('level_book_physics') -}}
    {%- elif column in own -%}
        {{- return(own[column]) -}}
    {%- endif -%}
    {{- exceptions.raise_compiler_error("feature_family: no family for the level feature '" ~ column ~ "': add it to the macro") -}}
{%- endmacro %}


{% macro level_feature_columns() -%}
    {#- (column of level_features, description) for every per-level feature, in vector order. -#}
    {%- set columns = [] -%}
    {%- for name, description in level_own_features() -%}
        {%- do columns.append((name, description)) -%}
    {%- endfor -%}
    {%- for side in ['ask', 'bid'] -%}
        {%- for name, description in level_side_features() -%}
            {%- do columns.append((side ~ '_' ~ name, description ~ ' (' ~ side ~ 's at or ' ~ ('above' if side == 'ask' else 'below') ~ ' the level)')) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{- return(columns) -}}
{%- endmacro %}


{% macro market_feature_columns() -%}
    {#- (column of market_features, description): market-wide features, no level prefix. -#}
    {{- return([
        ('spread_ticks', '(best ask - best bid) / tick at the window end'),
        ('top_of_book_imbalance_log', 'ln((best bid size + 1) / (best ask size + 1)) at the window end'),
        ('spot_return_ticks', 'change of spot over the window, in ticks'),
        ('trade_aggressor_imbalance', '(buy - sell aggressor volume) / (volume + 1) over the window'),
    ]) -}}
{%- endmacro %}


{% macro feature_blocks() -%}
    {#- The vector blocks of each base feature, in vector order. -#}
    {{- return([
        ('w0', 'x_t'),
        ('d1', 'x_t - x_(t-1)'),
        ('d2', 'd1_t - d1_(t-1)'),
        ('d3', 'd2_t - d2_(t-1)'),
        ('w3_mean', 'mean of x over the last 3 windows'),
        ('w9_mean', 'mean of x over the last 9 windows'),
        ('w24_mean', 'mean of x over the last 24 windows'),
        ('w3_delta', '(x_t - x_(t-2)) / 2'),
        ('w9_delta', '(x_t - x_(t-8)) / 8'),
        ('w24_delta', '(x_t - x_(t-23)) / 23'),
    ]) -}}
{%- endmacro %}


{% macro block_column(column, block) -%}
    {#- The column holding a block of a base feature (w0 is the feature itself). -#}
    {{- column if block == 'w0' else column ~ '_' ~ block -}}
{%- endmacro %}


{% macro feature_block_ctes(source, columns, partition_by, prefix) -%}
    {#- CTEs adding every block of feature_blocks() to each column of `source` over consecutive
        `feature_window_seconds` windows; the last is `<prefix>_blocks`. A window missing from
        the history counts as zero change (d1-d3, deltas); means average the windows present.
        Means sum exactly (DECIMAL(38, 18)): a double sum's rounding depends on how the window
        engine splits the partition, and live computes on the session so far. -#}
    {%- set seconds = var('feature_window_seconds') -%}
    {%- set window -%}
        partition by {{ partition_by | join(", ") }} order by window_start
    {%- endset %}
{{ derivative_ctes(source, columns, partition_by, prefix, spacing="interval " ~ seconds ~ " second") }},

{{ prefix }}_blocks as (
    select
        *,
        {%- for column in columns %}
        {%- set outer_loop = loop %}
        {%- for windows in [3, 9, 24] %}
        avg({{ column }}::decimal(38, 18)) over (
            {{ window }}
            range between interval {{ (windows - 1) * seconds }} second preceding and current row
        )::double as {{ column }}_w{{ windows }}_mean,
        case
            when
                lag(window_start, {{ windows - 1 }}) over ({{ window }})
                = window_start - interval {{ (windows - 1) * seconds }} second
                then ({{ column }} - lag({{ column }}, {{ windows - 1 }}) over ({{ window }})) / {{ windows - 1 }}
            else 0
        end as {{ column }}_w{{ windows }}_delta
        {{- "," if not (outer_loop.last and loop.last) }}
        {%- endfor %}
        {%- endfor %}
    from {{ prefix }}_d3
)
{%- endmacro %}
