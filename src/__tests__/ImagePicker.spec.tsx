import { nullTranslator } from '@jupyterlab/translation';
import { fireEvent, render, screen, within } from '@testing-library/react';
import * as React from 'react';

import {
  groupImages,
  ImagePicker,
  imageProject
} from '../components/ImagePicker';

const trans = nullTranslator.load('canfar_jlab');

const images = [
  'images.canfar.net/skaha/astroml:24.07',
  'images.canfar.net/skaha/base:latest',
  'images.canfar.net/lsst/sciplat-lab:w_2026_40',
  'images.canfar.net/cirada/casa:6.6'
].map(id => ({ id, types: ['headless'] }));

describe('ImagePicker', () => {
  it('groups images by project and filters them by every typed word', () => {
    expect(imageProject('images.canfar.net/skaha/astroml:24.07')).toBe('skaha');
    expect(imageProject('python:3.11')).toBe('');
    expect(groupImages(images, '').map(([p]) => p)).toEqual([
      'cirada',
      'lsst',
      'skaha'
    ]);
    expect(
      groupImages(images, 'skaha ml').map(([p, l]) => [p, l.map(i => i.id)])
    ).toEqual([['skaha', ['images.canfar.net/skaha/astroml:24.07']]]);
  });

  it('is a combobox: type to search, arrows and Enter to pick', () => {
    let value = '';
    const picked: string[] = [];
    const { rerender } = render(
      <ImagePicker
        id="img"
        value={value}
        images={images}
        placeholder="Search"
        onChange={v => picked.push((value = v))}
        trans={trans}
      />
    );
    const input = screen.getByRole('combobox');
    fireEvent.focus(input);
    const list = screen.getByRole('listbox');
    expect(within(list).getAllByRole('group')).toHaveLength(3);
    fireEvent.change(input, { target: { value: 'skaha' } });
    rerender(
      <ImagePicker
        id="img"
        value={value}
        images={images}
        placeholder="Search"
        onChange={v => picked.push((value = v))}
        trans={trans}
      />
    );
    const options = within(screen.getByRole('listbox')).getAllByRole('option');
    expect(options.map(o => o.textContent)).toEqual([
      'astroml:24.07',
      'base:latest'
    ]);
    fireEvent.keyDown(input, { key: 'ArrowDown' });
    fireEvent.keyDown(input, { key: 'ArrowDown' });
    fireEvent.keyDown(input, { key: 'Enter' });
    expect(picked[picked.length - 1]).toBe(
      'images.canfar.net/skaha/base:latest'
    );
    expect(screen.queryByRole('listbox')).toBeNull();
  });
});
