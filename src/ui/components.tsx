/**
 * Small pieces the views share: model output rendered from the Markdown tree as text nodes (never
 * as HTML), a modal dialog on the native <dialog> (focus kept inside, Escape closes), and an
 * error line.
 */
import type { ComponentChildren, JSX } from "preact"
import { useEffect, useRef } from "preact/hooks"
import { type Block, type Inline, parseMarkdown } from "./lib/markdown.js"

const renderInline = (nodes: ReadonlyArray<Inline>): Array<JSX.Element | string> =>
  nodes.map((node, i) => {
    if (typeof node === "string") return node
    switch (node.t) {
      case "code":
        return <code key={i}>{node.text}</code>
      case "strong":
        return <strong key={i}>{renderInline(node.children)}</strong>
      case "em":
        return <em key={i}>{renderInline(node.children)}</em>
      case "link":
        return <a key={i} href={node.href} target="_blank" rel="noopener noreferrer">{renderInline(node.children)}</a>
    }
  })

const renderBlocks = (blocks: ReadonlyArray<Block>): Array<JSX.Element> =>
  blocks.map((block, i) => {
    switch (block.t) {
      case "p":
        return <p key={i}>{renderInline(block.children)}</p>
      case "h": {
        const Tag = `h${Math.min(6, block.level + 2)}` as "h3"
        return <Tag key={i}>{renderInline(block.children)}</Tag>
      }
      case "pre":
        return <pre key={i} class="code"><code>{block.text}</code></pre>
      case "list":
        return block.ordered
          ? <ol key={i} start={block.start}>{block.items.map((item, j) => <li key={j}>{renderBlocks(item)}</li>)}</ol>
          : <ul key={i}>{block.items.map((item, j) => <li key={j}>{renderBlocks(item)}</li>)}</ul>
      case "quote":
        return <blockquote key={i}>{renderBlocks(block.children)}</blockquote>
      case "hr":
        return <hr key={i} />
    }
  })

/** Model output: Markdown read into text nodes, or the plain text. */
export function ModelText({ text, markdown }: { readonly text: string; readonly markdown: boolean }) {
  if (!markdown) return <div class="plain">{text}</div>
  return <div class="md">{renderBlocks(parseMarkdown(text))}</div>
}

/** A modal dialog shown while mounted; Escape or the close button calls `onClose`. */
export function Modal(props: { readonly title: string; readonly onClose: () => void; readonly children: ComponentChildren; readonly label?: string }) {
  const ref = useRef<HTMLDialogElement>(null)
  useEffect(() => {
    const dialog = ref.current
    if (dialog !== null && !dialog.open) dialog.showModal()
    return () => dialog?.close()
  }, [])
  return (
    <dialog
      ref={ref}
      aria-label={props.label ?? props.title}
      onCancel={(e) => {
        e.preventDefault()
        props.onClose()
      }}
    >
      <h2>{props.title}</h2>
      {props.children}
    </dialog>
  )
}

/** An error line (announced to screen readers). */
export function ErrorLine({ message }: { readonly message: string | undefined }) {
  return message === undefined ? null : <p class="error" role="alert">{message}</p>
}
