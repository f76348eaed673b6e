/** The right-sidebar widget (`devstral-sidebar`). */
import { ReactWidget } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { SIDEBAR_ID } from './commands';
import { DevstralPanel } from './components/Panel';
import type { Conversations } from './conversations';
import type { ServerStatus } from './serverStatus';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M4 3h9a8 8 0 0 1 0 16H9l-5 3V3zm3 3v10h6a5 5 0 0 0 0-10H7z"/>
  </g>
</svg>`;

export const devstralIcon = new LabIcon({
  name: 'jupyter-devstral:icon',
  svgstr: ICON_SVG
});

export class DevstralSidebar extends ReactWidget {
  constructor(
    private readonly _conversations: Conversations,
    private readonly _server: ServerStatus
  ) {
    super();
    this.id = SIDEBAR_ID;
    this.title.icon = devstralIcon;
    this.title.caption = 'Devstral';
    this.addClass('jp-Devstral-sidebar');
  }

  render(): JSX.Element {
    return (
      <DevstralPanel
        conversations={this._conversations}
        server={this._server}
      />
    );
  }
}
