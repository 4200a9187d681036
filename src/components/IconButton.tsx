import { LabIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

export interface IIconButtonProps {
  icon: LabIcon;
  /** Said by screen readers and shown as the tooltip. */
  label: string;
  onClick: () => void;
  disabled?: boolean;
  /** A tooltip that explains why the button is disabled. */
  disabledReason?: string;
  className?: string;
}

/** A small icon button in JupyterLab's style, keyboard reachable, always labelled. */
export function IconButton(props: IIconButtonProps): JSX.Element {
  const title =
    props.disabled && props.disabledReason ? props.disabledReason : props.label;
  return (
    <button
      type="button"
      className={`jp-Button jp-mod-minimal jp-canfar-iconbutton ${props.className ?? ''}`}
      aria-label={props.label}
      title={title}
      // aria-disabled keeps the explanation reachable by keyboard and hover
      aria-disabled={props.disabled ? 'true' : undefined}
      onClick={() => {
        if (!props.disabled) {
          props.onClick();
        }
      }}
    >
      <props.icon.react tag="span" className="jp-canfar-iconbutton-icon" />
    </button>
  );
}
