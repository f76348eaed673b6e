/**
 * Rendering through JupyterLab itself: markdown with the rendermime registry's parser and
 * sanitizer (and its LaTeX typesetter), code highlighted with the editor language registry
 * and the highlight style notebook cells use, so both follow the JupyterLab theme.
 *
 * Model output is untrusted: it is rendered as untrusted markdown (sanitized) inside an
 * inert document, where nothing loads or runs, then stripped of what could reach the network
 * on its own (remote images, inline styles, media sources) before it enters the page. Links
 * open in a new tab with `rel="noopener noreferrer"`.
 */
import {
  IEditorLanguageRegistry,
  jupyterHighlightStyle
} from '@jupyterlab/codemirror';
import { IRenderMimeRegistry, renderMarkdown } from '@jupyterlab/rendermime';

import { hasMath } from '../markdown';

export interface IRenderServices {
  rendermime: IRenderMimeRegistry | null;
  languages: IEditorLanguageRegistry | null;
}

const services: IRenderServices = { rendermime: null, languages: null };

/** Set once by the plugin (index.ts) before the sidebar renders. */
export function configureRendering(options: Partial<IRenderServices>): void {
  Object.assign(services, options);
}

let inert: Document | null = null;

/** A document not shown anywhere: its images do not load and its handlers do not run. */
function scratch(): HTMLElement {
  inert = inert ?? document.implementation.createHTMLDocument('devstral');
  return inert.createElement('div');
}

const REMOTE_ATTRS = ['srcset', 'poster', 'background', 'style', 'id'];

/** Make rendered model output safe to show: no fetches of its own, links in a new tab. */
export function harden(root: HTMLElement): void {
  // heading anchors (¶) and ids would clash with the notebook's own
  root.querySelectorAll('.jp-InternalAnchorLink').forEach(a => a.remove());
  for (const el of Array.from(root.querySelectorAll('*'))) {
    for (const attr of REMOTE_ATTRS) {
      el.removeAttribute(attr);
    }
    const tag = el.tagName.toLowerCase();
    if (tag === 'img') {
      const src = el.getAttribute('src') ?? '';
      if (!/^data:image\//i.test(src)) {
        // a remote image could carry notebook data in its URL: a link the user may follow
        // (rendermime names an image without alt text "Image")
        const alt = el.getAttribute('alt') ?? '';
        const link = el.ownerDocument.createElement('a');
        link.setAttribute('href', src);
        link.textContent =
          alt && alt !== 'Image' ? `[image: ${alt}]` : '[image]';
        el.replaceWith(link);
      }
    } else if (['video', 'audio', 'source', 'track', 'iframe'].includes(tag)) {
      el.remove();
    }
  }
  for (const a of Array.from(root.querySelectorAll('a'))) {
    const href = a.getAttribute('href') ?? '';
    if (!/^(https?:|mailto:)/i.test(href)) {
      a.removeAttribute('href'); // relative links would open inside JupyterLab
      continue;
    }
    a.setAttribute('target', '_blank');
    a.setAttribute('rel', 'noopener noreferrer');
  }
}

/** Render markdown from the model into `host` (its children are replaced in one step). */
export async function renderMarkdownInto(
  host: HTMLElement,
  source: string
): Promise<void> {
  const rendermime = services.rendermime;
  const out = scratch();
  if (rendermime) {
    await renderMarkdown({
      host: out,
      source,
      trusted: false,
      sanitizer: rendermime.sanitizer,
      resolver: null,
      linkHandler: null,
      latexTypesetter: null,
      markdownParser: rendermime.markdownParser ?? null,
      shouldTypeset: false
    });
  } else {
    const pre = out.ownerDocument.createElement('div');
    pre.textContent = source;
    out.appendChild(pre);
  }
  harden(out);
  host.replaceChildren(
    ...Array.from(out.childNodes).map(node => document.adoptNode(node))
  );
  const typesetter = rendermime?.latexTypesetter;
  if (typesetter && hasMath(source)) {
    await typesetter.typeset(host);
  }
}

let styleMounted = false;

/** The token classes of notebook code (CSS variables of the theme) in this document. */
function mountHighlightStyle(): void {
  if (styleMounted) {
    return;
  }
  styleMounted = true;
  const rules = jupyterHighlightStyle.module?.getRules();
  if (rules) {
    const style = document.createElement('style');
    style.dataset.devstral = 'highlight';
    style.textContent = rules;
    document.head.appendChild(style);
  }
}

/** Highlight `code` into a fresh element the way JupyterLab highlights code cells. */
export async function highlight(
  code: string,
  lang: string
): Promise<HTMLElement> {
  const el = document.createElement('span');
  const languages = services.languages;
  const spec = lang && languages ? languages.findBest(lang) : null;
  if (!languages || !spec) {
    el.textContent = code;
    return el;
  }
  mountHighlightStyle();
  await languages.highlight(code, spec, el);
  return el;
}
