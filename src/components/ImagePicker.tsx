import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { IImage } from '../api';

/** An image's project: `images.canfar.net/<project>/<name>:<tag>` gives `<project>`. */
export function imageProject(id: string): string {
  const parts = id.split('/');
  if (parts.length >= 3) {
    return parts[parts.length - 2];
  }
  return parts.length === 2 ? parts[0] : '';
}

/** Images matching `query` (every word, anywhere in the id), grouped by project, sorted. */
export function groupImages(
  images: readonly IImage[],
  query: string
): [string, IImage[]][] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const groups = new Map<string, IImage[]>();
  for (const image of images) {
    const id = image.id.toLowerCase();
    if (!words.every(w => id.includes(w))) {
      continue;
    }
    const project = imageProject(image.id);
    const list = groups.get(project) ?? [];
    list.push(image);
    groups.set(project, list);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([project, list]) => [
      project,
      list.sort((a, b) => a.id.localeCompare(b.id))
    ]);
}

const SHOWN = 200;

/**
 * A searchable image field: type to filter the service's headless images, grouped by
 * project; arrow keys and Enter pick one; free text stays allowed (any image the service
 * can pull).
 */
export function ImagePicker(props: {
  id: string;
  value: string;
  images: readonly IImage[];
  placeholder: string;
  invalid?: boolean;
  describedBy?: string;
  onChange: (value: string) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { trans, images } = props;
  const [open, setOpen] = React.useState(false);
  const [active, setActive] = React.useState(-1);
  // Opening shows every image; typing filters.
  const [query, setQuery] = React.useState<string | null>(null);
  const groups = groupImages(images, query ?? '');
  const flat = ([] as IImage[])
    .concat(...groups.map(([, list]) => list))
    .slice(0, SHOWN);
  const listId = `${props.id}-list`;
  const optionId = (i: number) => `${props.id}-option-${i}`;

  const choose = (image: IImage) => {
    props.onChange(image.id);
    setOpen(false);
    setQuery(null);
    setActive(-1);
  };

  const onKey = (event: React.KeyboardEvent<HTMLInputElement>) => {
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      if (!open) {
        setOpen(true);
        return;
      }
      const step = event.key === 'ArrowDown' ? 1 : -1;
      setActive(i => Math.max(0, Math.min(flat.length - 1, i + step)));
    } else if (event.key === 'Enter' && open && active >= 0 && flat[active]) {
      event.preventDefault();
      choose(flat[active]);
    } else if (event.key === 'Escape' && open) {
      event.preventDefault();
      event.stopPropagation();
      setOpen(false);
    }
  };

  let index = 0;
  return (
    <div className="jp-canfar-imagepicker">
      <input
        id={props.id}
        className="jp-mod-styled"
        role="combobox"
        aria-autocomplete="list"
        aria-expanded={open && flat.length > 0}
        aria-controls={listId}
        aria-activedescendant={
          open && active >= 0 ? optionId(active) : undefined
        }
        aria-invalid={props.invalid ? true : undefined}
        aria-describedby={props.describedBy}
        placeholder={props.placeholder}
        value={props.value}
        spellCheck={false}
        autoComplete="off"
        onFocus={() => images.length > 0 && setOpen(true)}
        onBlur={() => setOpen(false)}
        onKeyDown={onKey}
        onChange={e => {
          props.onChange(e.target.value);
          setQuery(e.target.value);
          setActive(-1);
          setOpen(images.length > 0);
        }}
      />
      {open && flat.length > 0 && (
        <ul
          id={listId}
          className="jp-canfar-imagepicker-list"
          role="listbox"
          aria-label={trans.__('Images')}
        >
          {groups.map(([project, list]) => {
            const shown = list.filter(() => index < SHOWN);
            if (shown.length === 0) {
              return null;
            }
            return (
              <li key={project} role="presentation">
                <div
                  className="jp-canfar-imagepicker-group"
                  id={`${props.id}-group-${project}`}
                >
                  {project || trans.__('Other')}
                </div>
                <ul
                  role="group"
                  aria-labelledby={`${props.id}-group-${project}`}
                >
                  {shown.map(image => {
                    const i = index++;
                    return (
                      <li
                        key={image.id}
                        id={optionId(i)}
                        role="option"
                        aria-selected={i === active}
                        className="jp-canfar-imagepicker-option"
                        title={image.id}
                        // mousedown, not click: the input keeps its focus
                        onMouseDown={e => {
                          e.preventDefault();
                          choose(image);
                        }}
                      >
                        {image.id.slice(image.id.lastIndexOf('/') + 1)}
                      </li>
                    );
                  })}
                </ul>
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}
