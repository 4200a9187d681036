import * as React from 'react';

export interface ISparklineProps {
  values: number[];
  /** What the line shows, for screen readers and the tooltip. */
  label: string;
  /** The top of the scale; the largest value when not given. */
  max?: number;
  width?: number;
  height?: number;
  className?: string;
}

/** The points of a polyline for `values` in a width x height box (y grows downwards). */
export function sparkPoints(
  values: number[],
  width: number,
  height: number,
  max?: number
): string {
  if (values.length === 0) {
    return '';
  }
  const top = Math.max(max ?? 0, ...values) || 1;
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  return values
    .map((v, i) => {
      const x = values.length > 1 ? i * step : width;
      const y = height - 1 - (Math.max(0, v) / top) * (height - 2);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(' ');
}

/** A tiny line chart in SVG, coloured by the theme through CSS. */
export function Sparkline(props: ISparklineProps): JSX.Element {
  const { values, label, max, width = 56, height = 16 } = props;
  return (
    <svg
      className={`jp-canfar-sparkline ${props.className ?? ''}`}
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={label}
    >
      <title>{label}</title>
      <line
        className="jp-canfar-sparkline-base"
        x1={0}
        x2={width}
        y1={height - 0.5}
        y2={height - 0.5}
      />
      {values.length > 0 && (
        <polyline
          className="jp-canfar-sparkline-line"
          points={sparkPoints(values, width, height, max)}
        />
      )}
    </svg>
  );
}
