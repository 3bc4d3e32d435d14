/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Intrusive doubly-linked lists: an item has `next` and `prev` pointers, a
 * list is a pointer to its first item. */
#pragma once

#define LIST_PREPEND(head, item)                                     \
        do {                                                         \
                __typeof__(item) _item = (item);                     \
                _item->prev = NULL;                                  \
                _item->next = (head);                                \
                if (_item->next)                                     \
                        _item->next->prev = _item;                   \
                (head) = _item;                                      \
        } while (0)

#define LIST_REMOVE(head, item)                                      \
        do {                                                         \
                __typeof__(item) _item = (item);                     \
                if (_item->prev)                                     \
                        _item->prev->next = _item->next;             \
                else                                                 \
                        (head) = _item->next;                        \
                if (_item->next)                                     \
                        _item->next->prev = _item->prev;             \
                _item->next = _item->prev = NULL;                    \
        } while (0)
