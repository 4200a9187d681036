import { LabIcon } from '@jupyterlab/ui-components';

import canfarSvgStr from '../style/icons/canfar.svg';

/** The CANFAR sidebar icon (a telescope dome under a star). */
export const canfarIcon = new LabIcon({
  name: 'canfar-jlab:canfar',
  svgstr: canfarSvgStr
});
