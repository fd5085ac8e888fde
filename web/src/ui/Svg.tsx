// An SVG the gateway drew (QR codes): parsed as SVG, never as HTML, and sanitised of scripts.
import { useEffect, useRef } from "preact/hooks";

export function Svg({ markup, label, class: className }: { markup: string; label: string; class?: string }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const doc = new DOMParser().parseFromString(markup, "image/svg+xml");
    const svg = doc.documentElement;
    svg.querySelectorAll("script, foreignObject").forEach((n) => n.remove());
    for (const el of [svg, ...svg.querySelectorAll("*")]) {
      for (const attr of [...el.attributes]) if (attr.name.startsWith("on")) el.removeAttribute(attr.name);
    }
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    host.current?.replaceChildren(document.importNode(svg, true));
  }, [markup, label]);
  return <div class={className} ref={host} />;
}
